"""QTRAC MEM/MEF reader and the CMAP-scan summary, on the real QtracP files."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

import ncsproc
from ncsproc.errors import FormatError, QCWarning, UnsupportedFormatError
from ncsproc.features import excitability
from ncsproc.formats import qtrac

SAMPLES = Path(__file__).resolve().parents[2] / "data_samples" / "real"
EXC = SAMPLES / "qtrac-excitability"
SCAN = SAMPLES / "qtrac-cmap-scan"
MEF = SCAN / "CA-EDM-MSF2 APB-1 9.MEF"
SCANS = sorted(SCAN.glob("*.MEM"))

# (file, Scanpts, rows, max CMAP of the scan proper (mV), D50 of the scan proper, D50 of all
# rows, QtracP's MScD50, QtracP's MScPeak (mV), MSFNUnits)
SCAN_FACTS = [
    ("MSCC00128A_OM2", (99, 102, 548, 551), 557, 6.606, 40, 42, 43, 6.62, 94),
    ("MSCC00201A_OM2", (171, 176, 502, 523), 523, 8.200, 39, 39, 39, 8.14, 156),
    ("MSCC00205A_OM2", (69, 74, 456, 478), 478, 12.729, 43, 44, 44, 12.81, 144),
    ("MSCC00211A_OM2", (26, 32, 648, 673), 912, 10.226, 30, 31, 31, 10.12, 82),
    ("MSCC00226B_OM2", (13, 17, 270, 275), 642, 10.665, 28, 28, 28, 10.60, 145),
    ("MSCC00302A_OM2", (31, 34, 463, 467), 524, 10.468, 48, 49, 49, 10.32, 102),
    ("MSCC00921A_OM2", (135, 148, 626, 633), 642, 8.208, 33, 35, 35, 8.23, 79),
    ("MSCC00925A_OM2", (111, 117, 445, 467), 467, 12.413, 33, 33, 33, 12.36, 157),
    ("MSCC00930A_OM2", (119, 124, 478, 486), 606, 10.109, 33, 33, 33, 10.03, 165),
]


def _all_text(ds) -> str:
    parts = [repr(ds.attrs)]
    for name in ds.variables:
        parts.append(repr(ds[name].attrs))
        if ds[name].dtype.kind in "OUS":
            parts.extend(str(v) for v in np.ravel(ds[name].values))
    return "\n".join(parts)


# --------------------------------------------------------------------------------------------
# Nerve-excitability files


def test_excitability_header_and_privacy():
    ds = qtrac.read_qtrac(EXC / "FESB70821A.MEM")
    a = ds.attrs
    assert (a["protocol"], a["date"], a["start_time"], a["sex"]) == (
        "TRONDNF",
        "2017-08-21",
        "12:57:17",
        "M",
    )
    assert (a["age"], a["temperature"]) == (30.0, 33.5)
    assert (a["sites"], a["nerve"], a["stim_site"], a["record_site"]) == (
        "Median Wr-APB",
        "median",
        "wrist",
        "APB",
    )
    assert a["qzd_file"] == "FESB70821A.QZD"
    text = _all_text(ds)
    for secret in ("CR21S", "smooth recording", "Human Normative data", "Median nerve raw", "n:\\"):
        assert secret not in text
    b = qtrac.read_qtrac(EXC / "FESB70821B.MEM").attrs
    assert (b["sites"], b["nerve"], b["record_site"]) == ("CP-TA", "peroneal", "TA")
    assert "stim_site" not in b  # the file does not say
    rat = qtrac.read_qtrac(EXC / "rat.MEM")
    assert "Kelvin Jones" not in _all_text(rat)
    assert rat.attrs["protocol"] == "TRONDXM2" and rat.attrs["date"] == "2009-10-08"


def test_excitability_tables_in_si_units():
    ds = qtrac.read_qtrac(EXC / "FESB70821A.MEM")
    assert ds.sizes["sr_point"] == 49 and list(ds["sr_point"].values[[0, -1]]) == [2, 98]
    assert ds["sr_stimulus_2"].attrs["units"] == "A"
    assert float(ds["sr_stimulus_2"].sel(sr_point=2)) == pytest.approx(3.915578e-3)
    assert float(ds["sr_max_cmap"].sel(sr_width=1e-3)) == pytest.approx(1.161296e-3)
    assert ds["te_threshold_reduction"].dims == ("te_set", "te_point")
    assert list(ds["te_set"].values) == [1, 2, 3, 4]
    assert float(ds["te_delay"].sel(te_set=2, te_point=26)) == pytest.approx(0.210)
    assert float(ds["te_threshold_reduction"].sel(te_set=2, te_point=26)) == pytest.approx(8.78)
    assert np.isnan(float(ds["te_delay"].sel(te_set=2, te_point=27)))  # TE2 has 26 rows, TE1 28
    assert float(ds["rc_interval"].sel(rc_set=1, rc_point=16)) == pytest.approx(0.200)
    assert float(ds["iv_current"].sel(iv_set=1, iv_point=16)) == -100.0
    assert float(ds["derived_latency"]) == pytest.approx(8.063e-3)
    assert ds["derived_latency"].attrs["units"] == "s"
    assert float(ds["derived_peak_response"]) == pytest.approx(1.161e-3)
    assert ds["derived_peak_response"].attrs["units"] == "V"
    assert float(ds["derived_rheobase"]) == pytest.approx(4.026e-3)
    assert float(ds["TEd40_Accom"]) == 19.6
    # conversions add no binary noise: 6.5 mV is the double nearest 0.0065
    scan = qtrac.read_qtrac(SCAN / "MSCC00128A_OM2.MEM")
    assert float(scan["MSFPeakAmp"]) == 0.0065 and float(scan["MSFHuntTime"]) == 2.27 * 60
    assert float(ds["qt_threshold"].sel(qt_point=1)) == 0.009790961


def test_excitability_tables_agree_with_the_derived_variables():
    """Facts QtracP writes twice in different places must agree once read and converted."""
    for name in ("FESB70821A.MEM", "FESB70821B.MEM", "rat.MEM"):
        ds = qtrac.read_qtrac(EXC / name)
        # the 1 ms Max CMAP line and derived variable 6 (peak response)
        assert float(ds["sr_max_cmap"].sel(sr_width=1e-3)) == pytest.approx(
            float(ds["derived_peak_response"]), abs=1e-6
        )
        # header and derived table: temperature, age, sex
        assert float(ds["derived_temperature"]) == ds.attrs["temperature"]
        assert float(ds["derived_age"]) == ds.attrs["age"]
        assert float(ds["derived_sex_m_1_f_2"]) == {"M": 1, "F": 2}[ds.attrs["sex"]]
        # stimulus for 50 % max response: the SR row at 50 % (QtracP interpolates a fit)
        column = "sr_stimulus_2"
        assert float(ds[column].sel(sr_point=50)) == pytest.approx(
            float(ds["derived_stimulus_for_50pct_max_response"]), rel=0.01
        )
        # superexcitability at 5 ms is the recovery-cycle value at 5 ms
        rc = ds["rc_threshold_change"].sel(rc_set=1).values
        at5 = rc[np.isclose(ds["rc_interval"].sel(rc_set=1).values, 5e-3)]
        assert at5.size == 1 and at5[0] == pytest.approx(
            float(ds["derived_superexcitability_at_5_ms"]), abs=0.01
        )
    a = qtrac.read_qtrac(EXC / "FESB70821A.MEM")
    # charge = duration x threshold (mA x ms = uC), row by row
    np.testing.assert_allclose(
        a["qt_charge"].values, a["qt_duration"].values * a["qt_threshold"].values, rtol=2e-6
    )
    assert a["qt_charge"].attrs["units"] == "C"
    # TRONDXM2: strength-duration rows at 40 % CMAP give the derived rheobase and SDTC
    rat = qtrac.read_qtrac(EXC / "rat.MEM")
    row = rat.sel(sd_point=int(rat["sd_point"][rat["sd_percent_cmap"].values == 40][0]))
    assert float(row["sd_rheobase"]) == pytest.approx(float(rat["derived_rheobase"]), abs=1e-6)
    assert float(row["sd_tsd"]) == pytest.approx(
        float(rat["derived_strength_duration_time_constant"]), abs=1e-6
    )
    refr = rat["rc_threshold_change"].sel(rc_set=1)
    assert float(refr.sel(rc_point=1)) == pytest.approx(
        float(rat["derived_refractoriness_at_2_ms"]), abs=0.01
    )


def test_complete_files_give_no_warning():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for path in [*SCANS, EXC / "FESB70821A.MEM", EXC / "FESB70821B.MEM", EXC / "rat.MEM"]:
            assert "qtrac_problems" not in qtrac.read_qtrac(path).attrs


def test_short_file_is_a_partial_result_naming_what_is_missing():
    with pytest.warns(QCWarning) as record:
        ds = qtrac.read_qtrac(EXC / "short_test.MEM")
    message = str(record[0].message)
    for expected in (
        "short_test.MEM",
        "stimulus-response table stops at 20 %",
        "TE3, TE4 are missing",
        "TE1.5 (line 51) does not advance in delay (11 ms after 11 ms)",
        "TE1 stops at 11 ms (line 51) while the conditioning current (40 %) is still on",
        "recovery cycle stops at 7.9 ms",
        "I/V table stops at -20 %",
        "27 of the 32 derived variables",
    ):
        assert expected in message
    assert ds.attrs["qtrac_problems"].count("\n") == 7
    assert ds.sizes["sr_point"] == 10 and ds.sizes["rc_point"] == 5
    assert float(ds["sr_max_cmap"].sel(sr_width=2e-4)) == pytest.approx(61.36306e-6)  # the uV line


def test_truncations_of_a_real_file_never_crash(tmp_path):
    data = (EXC / "FESB70821A.MEM").read_bytes()
    p = tmp_path / "cut.MEM"
    results = {"partial": 0, "error": 0}
    for cut in list(range(0, len(data), 97)) + [len(data) - 6]:
        p.write_bytes(data[:cut])
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                ds = qtrac.read_qtrac(p)
            except FormatError as exc:
                assert "cut.MEM" in str(exc)
                results["error"] += 1
                continue
        assert any(issubclass(w.category, QCWarning) for w in caught) or cut < 700
        if cut >= 700:
            assert "qtrac_problems" in ds.attrs
        results["partial"] += 1
    assert results["partial"] > 100
    # the last line cut to "TEh20(10-20ms) = -32" is dropped, not read as -32
    assert "TEh20_10_20ms" not in ds and "TEd20_10_20ms" in ds
    p.write_bytes(data[:-3])  # only line ends lost: nothing is missing
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert float(qtrac.read_qtrac(p)["TEh20_10_20ms"]) == -32.2


def test_damaged_lines_are_named(tmp_path):
    text = (SCAN / "MSCC00128A_OM2.MEM").read_bytes().decode("latin-1")
    p = tmp_path / "bad.MEM"
    p.write_bytes(
        text.replace(
            "MS.200         \t9.807          \t5.186", "MS.200         \t9.807          \tx.186"
        ).encode("latin-1")
    )
    with pytest.raises(
        FormatError,
        match=r"bad\.MEM, line 215: expected a number in column 'Amp\. \(mV\)', got 'x\.186'",
    ):
        qtrac.read_qtrac(p)
    p.write_bytes(text.replace("MS.200         \t9.807", "MS.200         ").encode("latin-1"))
    with pytest.raises(FormatError, match=r"line 215: row 'MS.200' has 1 values, expected 2"):
        qtrac.read_qtrac(p)
    p.write_bytes(text.replace("MS.201 ", "MS.200 ").encode("latin-1"))
    with pytest.raises(FormatError, match=r"line 216: row 'MS.200' repeats line 215"):
        qtrac.read_qtrac(p)
    p.write_bytes(
        text.replace("Scanpts: 99, 102, 548, 551", "Scanpts: 99, 102, 548").encode("latin-1")
    )
    with pytest.raises(FormatError, match=r"line 14: Scanpts"):
        qtrac.read_qtrac(p)
    p.write_bytes(
        text.replace("Age:               \t43", "Age:               \tforty").encode("latin-1")
    )
    with pytest.raises(FormatError, match=r"line 6: expected age as a number"):
        qtrac.read_qtrac(p)


# --------------------------------------------------------------------------------------------
# CMAP scans


@pytest.mark.parametrize("facts", SCAN_FACTS, ids=[f[0] for f in SCAN_FACTS])
def test_cmap_scan_file(facts):
    name, scanpts, rows, max_mv, d50_scan, d50_all, qtrac_d50, qtrac_peak, n_units = facts
    ds = qtrac.read_qtrac(SCAN / f"{name}.MEM")
    assert tuple(ds.attrs["scanpts"]) == scanpts
    assert ds.sizes["mscan_point"] == rows
    assert list(ds["mscan_point"].values) == list(range(1, rows + 1))
    assert (
        ds["mscan_stimulus"].attrs["units"] == "A" and ds["mscan_amplitude"].attrs["units"] == "V"
    )
    assert ds.attrs["protocol"] == "MSCAN-R2" and ds.attrs["record_site"] == "APB"
    assert float(ds["MScD50"]) == qtrac_d50
    assert float(ds["MScPeak"]) == pytest.approx(qtrac_peak * 1e-3)
    assert ds["MScPeak"].attrs["units"] == "V"
    assert float(ds["MSFNUnits"]) == n_units
    s = excitability.cmap_scan(ds)
    assert str(s["status"].values) == "ok"
    assert (int(s["first_row"]), int(s["last_row"])) == (scanpts[1] + 1, scanpts[2])
    assert int(s["n_points"]) == scanpts[2] - scanpts[1]
    assert float(s["max_cmap"]) == pytest.approx(max_mv * 1e-3, abs=1e-9)
    assert int(s["d50"]) == d50_scan
    # QtracP's MScPeak is not the largest amplitude of the scan: within 1.5 %
    assert float(s["max_cmap"]) == pytest.approx(qtrac_peak * 1e-3, rel=0.015)
    assert int(excitability.cmap_scan(ds, rows="all")["d50"]) == d50_all


def test_qtracp_d50_is_the_d50_of_all_rows():
    """QtracP's MScD50 equals D50 over every M-scan row for 8 of 9 files; the ninth is a tie
    that the written 1 uV resolution cannot settle. Over the scan proper (the contract) D50 is
    equal or 1-3 smaller, because the supramaximal rows widen the amplitude range."""
    same_all = [f[5] == f[6] for f in SCAN_FACTS]
    same_scan = [f[4] == f[6] for f in SCAN_FACTS]
    assert sum(same_all) == 8 and sum(same_scan) == 4
    assert all(0 <= f[6] - f[4] <= 3 for f in SCAN_FACTS)
    ds = qtrac.read_qtrac(SCAN / "MSCC00128A_OM2.MEM")
    amp_uv = np.rint(ds["mscan_amplitude"].values * 1e6).astype(np.int64)  # exact: 1 uV steps
    steps = np.sort(np.diff(np.sort(amp_uv)))[::-1]
    cumulative = np.cumsum(steps)
    half = steps.sum() / 2
    assert (steps.sum(), half) == (6955, 3477.5)
    assert cumulative[40] == 3423 and cumulative[41] == 3478  # 42 steps exceed half by 0.5 uV
    assert cumulative[41] - half == 0.5  # QtracP (on unrounded amplitudes) says 43


def test_d50_definition_by_hand():
    # steps 4, 3, 2, 1 (total 10): 4 is not more than 5, 4 + 3 is
    assert excitability.d50([0.0, 1.0, 3.0, 6.0, 10.0]) == 2
    assert excitability.d50([10.0, 0.0, 6.0, 3.0, 1.0]) == 2  # order does not matter
    # steps 5, 3, 2: 5 equals half and does not exceed it
    assert excitability.d50([0.0, 2.0, 5.0, 10.0]) == 2
    assert excitability.d50([0.0, 1.0]) == 1
    with pytest.raises(ValueError, match="flat"):
        excitability.d50([1.0, 1.0, 1.0])


def test_mscanfit_model_agrees_with_its_summary():
    for path in SCANS:
        ds = qtrac.read_qtrac(path)
        n = int(ds["MSFNUnits"])
        assert ds.sizes["msf_unit"] == n
        assert list(ds["msf_unit"].values) == list(range(1, n + 1))
        amp = ds["msf_unit_amplitude_pct"].values
        assert amp.sum() == pytest.approx(100.0, abs=0.1)
        assert amp.max() == pytest.approx(float(ds["MSFLargestAmp_pct"]), abs=0.006)
        assert amp.max() / 100 * float(ds["MSFPeakAmp"]) == pytest.approx(
            float(ds["MSFLargestAmp"]), abs=6e-6
        )
        # MSFMeanRS is the amplitude-weighted mean relative spread (2.09 % in MSCC00302A)
        weighted = float(
            (ds["msf_unit_spread_pct"] * ds["msf_unit_amplitude_pct"]).sum() / amp.sum()
        )
        assert weighted == pytest.approx(float(ds["MSFMeanRS_pct"]), abs=0.005)
        assert float(ds["MSFMeanUnitAmp"]) == pytest.approx(float(ds["MSFPeakAmp"]) / n, rel=0.01)
        if "MScDuration" in ds:  # not written in MSCC00302A
            assert ds["MScDuration"].attrs["units"] == "s"


def test_mef_is_the_cohort_of_its_mem_files():
    cohort = qtrac.read_qtrac(MEF)
    assert list(cohort["recording"].values) == [f[0] for f in SCAN_FACTS]
    assert cohort.sizes["mscan_point"] == 912  # aligned on row numbers, NaN-padded
    assert list(cohort["age"].values) == [43, 56, 47, 59, 53, 66, 75, 44, 23]
    assert cohort["age"].attrs["units"] == "years"
    assert "".join(cohort["sex"].values) == "MFMFFMMFF"
    assert cohort["scanpts"].dtype == np.int64
    summary = excitability.cmap_scan(cohort)
    assert list(summary["d50"].values) == [f[4] for f in SCAN_FACTS]
    np.testing.assert_allclose(
        summary["max_cmap"].values, [f[3] * 1e-3 for f in SCAN_FACTS], atol=1e-9
    )
    one = qtrac.read_qtrac(SCAN / "MSCC00211A_OM2.MEM")
    np.testing.assert_array_equal(
        cohort["mscan_amplitude"].sel(recording="MSCC00211A_OM2").values,
        one["mscan_amplitude"].values,
    )
    assert np.isnan(cohort["mscan_amplitude"].sel(recording="MSCC00128A_OM2", mscan_point=558))
    assert "CA.EDM" not in _all_text(cohort)


def test_mef_with_a_missing_member(tmp_path):
    (tmp_path / "A.MEM").write_bytes((SCAN / "MSCC00205A_OM2.MEM").read_bytes())
    mef = tmp_path / "list.MEF"
    mef.write_bytes(b"A\r\nB_missing\r\n")
    with pytest.raises(
        FormatError, match=r"list\.MEF: 1 listed MEM file\(s\) not found .*line 2: B_missing"
    ):
        qtrac.read_qtrac(mef)


def test_truncated_scan_is_flagged_not_measured(tmp_path):
    text = (SCAN / "MSCC00205A_OM2.MEM").read_bytes()
    cut = text.index(b"MS.300 ")
    p = tmp_path / "cut.MEM"
    p.write_bytes(text[: cut + 20])  # ends inside row MS.300
    with pytest.warns(
        QCWarning, match=r"ends inside line .* dropped; the M-scan lacks 179 of rows MS.1 to MS.478"
    ):
        ds = qtrac.read_qtrac(p)
    assert ds.sizes["mscan_point"] == 299
    s = excitability.cmap_scan(ds)
    assert str(s["status"].values) == "incomplete_scan" and np.isnan(float(s["d50"]))


# --------------------------------------------------------------------------------------------
# Registry


def test_sniff_and_read_refuses_results(tmp_path):
    renamed = tmp_path / "scan.txt"
    renamed.write_bytes((SCAN / "MSCC00205A_OM2.MEM").read_bytes())
    assert qtrac.READER.sniff(renamed) is None
    assert qtrac.READER.sniff(MEF) is None
    other = tmp_path / "notes.txt"
    other.write_text("hello\nworld: 3\n")
    assert "no QTRAC header" in qtrac.READER.sniff(other)
    with pytest.raises(UnsupportedFormatError) as err:
        ncsproc.read(SCAN / "MSCC00205A_OM2.MEM")
    # one sentence: what the file is, why it is no trace file, what to call instead
    assert str(err.value) == (
        "MSCC00205A_OM2.MEM holds QTRAC/QtracP results (.MEM nerve excitability and CMAP "
        "scans, .MEF lists), not recorded traces, so ncsproc.read cannot make a trace set of it "
        "(nor can ncsproc plot, info or measure): read it in Python with "
        "ncsproc.read_qtrac(path)"
    )


def test_public_names():
    assert ncsproc.read_qtrac is qtrac.read_qtrac
    assert ncsproc.cmap_scan is excitability.cmap_scan


def test_example_reads_cleanly_and_privately(tmp_path):
    p = qtrac.READER.example(tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ds = qtrac.READER.load(p)
    text = _all_text(ds)
    for secret in qtrac.READER.identifying:
        assert secret not in text
    assert ds.attrs["qzd_file"] == "EXAM0001.QZD"
    s = excitability.cmap_scan(ds)
    assert str(s["status"].values) == "ok" and float(s["d50"]) >= 1


def test_byte_flips_never_crash(tmp_path):
    rng = np.random.default_rng(11)
    data = (EXC / "FESB70821A.MEM").read_bytes()
    p = tmp_path / "flip.MEM"
    for _ in range(300):
        raw = bytearray(data)
        for k in rng.integers(0, len(raw), rng.integers(1, 4)):
            raw[k] = int(rng.integers(0, 256))
        p.write_bytes(bytes(raw))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", QCWarning)
            try:
                excitability.cmap_scan(qtrac.read_qtrac(p))
            except FormatError as exc:
                assert "flip.MEM" in str(exc)
