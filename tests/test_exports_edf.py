"""EDF+ export read back by independent readers (pyedflib, MNE, lunapi where it installs).

Signals are compared sample by sample with what each sensor delivered (within half a 16-bit
step), annotations one by one with the night's events, the file's gaps and the notes, and the
Luna sidecar line by line with the same.
"""

from __future__ import annotations

import csv
import math
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import mne
import numpy as np
import pyedflib
import pytest
from test_exports_nights import CUT, LATE_START_S, NIGHTS, SUBJECT, VERSION, Night, night

from analysis.grid import MAX_BRIDGE_S
from api.exports.edf import luna_annot, night_edf
from limbwatch.errors import BadInput
from limbwatch.recording import Side
from limbwatch.store.samples import Samples

Annotation = tuple[float, float, str]  # onset s from the file start, duration s (0: none), text
TEXT = {"lm": "LM:{side}", "plm_series": "PLM_series", "tremor": "tremor:{side}",
        "jerk": "jerk:{side}", "nonwear": "BAD_nonwear:{side}"}


def write(tmp_path: Path, name: str) -> Path:
    n = night(name)
    path = tmp_path / f"{name}.edf"
    path.write_bytes(night_edf(n.result, n.legs, full_scale_g=n.full_scale_g, subject=SUBJECT,
                               notes=n.notes, algorithm_version=VERSION))
    return path


def file_gaps(n: Night) -> list[tuple[Side, float, float]]:
    """The gaps the file must mark: the night's own, and a sensor starting late (plms night)."""
    gaps = [(leg.side, a, b) for leg in n.result.legs for a, b in leg.gaps]
    for side, s in n.legs.items():
        if s.time[0] - n.result.start > MAX_BRIDGE_S:
            gaps.append((side, math.floor(n.result.start), float(s.time[0])))
    return gaps


def expected(n: Night) -> list[Annotation]:
    t0 = math.floor(n.result.start)
    found = [(e.start - t0, e.end - e.start, TEXT[e.kind].format(side=e.side))
             for e in n.result.events() if e.kind != "gap"]
    found += [(a - t0, b - a, f"BAD_gap:{side}") for side, a, b in file_gaps(n)]
    found += [(note.time - t0, 0.0, f"journal:{note.kind} {' '.join(note.text.split())}".strip())
              for note in n.notes if note.time >= t0]
    return sorted(found, key=lambda a: (a[2].startswith("BAD_gap"), a[0], a[2]))


def assert_same(got: list[Annotation], want: list[Annotation], rates: list[float]) -> None:
    got = sorted(got, key=lambda a: (a[2].startswith("BAD_gap"), a[0], a[2]))
    assert [a[2] for a in got] == [a[2] for a in want]
    for g, w in zip(got, want, strict=True):
        # gaps: the file's slots versus the analysis grid, within two samples
        tol = 2 / min(rates) if w[2].startswith("BAD_gap") else 0.001
        assert g[0] == pytest.approx(w[0], abs=tol) and g[1] == pytest.approx(w[1], abs=tol), (
            g, w)


@pytest.mark.parametrize("name", NIGHTS)
def test_pyedflib_reads_every_sample_and_annotation(tmp_path: Path, name: str) -> None:
    n = night(name)
    t0 = math.floor(n.result.start)
    with pyedflib.EdfReader(str(write(tmp_path, name))) as f:
        start = f.getStartdatetime().replace(tzinfo=ZoneInfo(SUBJECT.time_zone))
        assert start.timestamp() == t0  # local clock time in the header
        assert f.getFileDuration() >= n.result.end - t0
        labels = f.getSignalLabels()
        assert labels == [f"Accel {a} {s}" for s in sorted(n.legs) for a in "XYZ"]
        step = n.full_scale_g / 32767
        for k, label in enumerate(labels):
            side = label.split()[-1]
            leg, fs = n.legs[side], f.getSampleFrequency(k)
            assert fs == next(x.sample_rate_hz for x in n.result.legs if x.side == side)
            assert f.datarecord_duration == 1.0
            assert (f.getPhysicalMinimum(k), f.getPhysicalMaximum(k)) == (
                -n.full_scale_g, n.full_scale_g)
            assert (f.getDigitalMinimum(k), f.getDigitalMaximum(k)) == (-32767, 32767)
            assert f.getPhysicalDimension(k) == "g"
            values = f.readSignal(k)
            slot = np.rint((leg.time - t0) * fs).astype(int)
            np.testing.assert_allclose(values[slot], leg.accel[:, "XYZ".index(label[6])],
                                       rtol=0, atol=step / 2 + 1e-6)
            for _, a, b in (g for g in file_gaps(n) if g[0] == side):
                filled = values[math.ceil((a - t0) * fs) + 1: round((b - t0) * fs) - 1]
                assert filled.size and np.all(np.abs(filled) <= step / 2)
        onsets, durations, texts = f.readAnnotations()
    got = [(float(o), max(float(d), 0.0), str(t)) for o, d, t in zip(onsets, durations, texts,
                                                                     strict=True)]
    assert_same(got, expected(n), [x.sample_rate_hz for x in n.result.legs])


@pytest.mark.parametrize("name", NIGHTS)
def test_mne_reads_the_same_signals_and_annotations(tmp_path: Path, name: str) -> None:
    n = night(name)
    t0 = math.floor(n.result.start)
    raw = mne.io.read_raw_edf(write(tmp_path, name), preload=True, verbose="error")
    top = max(x.sample_rate_hz for x in n.result.legs)
    assert raw.info["sfreq"] == top  # MNE upsamples slower legs to the fastest
    local = datetime.fromtimestamp(t0, ZoneInfo(SUBJECT.time_zone)).replace(tzinfo=None)
    assert raw.info["meas_date"].replace(tzinfo=None) == local  # MNE labels the clock UTC
    for side, leg in n.legs.items():
        fs = leg.fs
        every = round(top / fs)
        slot = np.rint((leg.time - t0) * fs).astype(int)
        for k, axis in enumerate("XYZ"):
            values = raw.get_data(picks=[f"Accel {axis} {side}"])[0][::every]
            np.testing.assert_allclose(values[slot], leg.accel[:, k], rtol=0,
                                       atol=n.full_scale_g / 32767 / 2 + 1e-6)
    a = raw.annotations
    got = [(float(o), float(d), str(t)) for o, d, t in zip(a.onset, a.duration, a.description,
                                                           strict=True)]
    assert_same(got, expected(n), [x.sample_rate_hz for x in n.result.legs])
    bad = {t for _, _, t in got if t.startswith("BAD")}
    assert bad <= {f"BAD_{kind}:{side}" for kind in ("gap", "nonwear") for side in n.legs}


def test_gaps_are_filled_with_zero_and_short_holes_bridged(tmp_path: Path) -> None:
    n = night("plms")
    t0 = math.floor(n.result.start)
    with pyedflib.EdfReader(str(write(tmp_path, "plms"))) as f:
        right = np.column_stack([f.readSignal(k) for k in (3, 4, 5)])
        left = f.readSignal(2)
    start, end = (round((n.result.start + c - t0) * 50) for c in CUT)
    assert np.all(right[start + 1: end] == 0.0)
    assert np.all(left[: round(LATE_START_S * 50) - 1] == 0.0)
    # a lost packet (< 1 s) lies between the samples on either side of it
    leg = n.legs["right"]
    hole = int(np.flatnonzero((np.diff(leg.time) > 0.1) & (np.diff(leg.time) < MAX_BRIDGE_S))[0])
    a, b = (round((leg.time[i] - t0) * 50) for i in (hole, hole + 1))
    lo, hi = np.minimum(right[a], right[b]), np.maximum(right[a], right[b])
    assert np.all((right[a:b + 1] >= lo - 1e-3) & (right[a:b + 1] <= hi + 1e-3))


def test_samples_sharing_a_slot_are_averaged(tmp_path: Path) -> None:
    """A sensor clock running fast puts two samples in one slot now and then."""
    n = night("nonwear")
    leg = n.legs["right"]
    i = leg.time.size // 2
    extra = leg.accel[i] + np.float32(0.25)
    fast = Samples(np.insert(leg.time, i + 1, leg.time[i] + 0.01),
                   np.insert(leg.accel, i + 1, extra, axis=0), leg.fs)
    path = tmp_path / "fast.edf"
    path.write_bytes(night_edf(n.result, {"right": fast}, full_scale_g=n.full_scale_g,
                               subject=SUBJECT, algorithm_version=VERSION))
    k = round((leg.time[i] - math.floor(n.result.start)) * leg.fs)
    with pyedflib.EdfReader(str(path)) as f:
        got = [f.readSignal(axis)[k] for axis in range(3)]
    np.testing.assert_allclose(got, (leg.accel[i] + extra) / 2, atol=n.full_scale_g / 32767)


def test_the_luna_sidecar_has_the_edf_annotations_with_their_figures() -> None:
    n = night("plms")
    text = luna_annot(n.result, n.legs, notes=n.notes)
    lines = text.splitlines()
    declared = [line.split("|")[0][1:].strip() for line in lines if line.startswith("#")]
    assert declared == ["LM", "PLM_series", "tremor", "jerk", "BAD_nonwear", "BAD_gap", "journal"]
    rows = list(csv.DictReader((line for line in lines if not line.startswith("#")),
                               delimiter="\t"))
    assert list(rows[0]) == ["class", "instance", "channel", "start", "stop", "meta"]
    got = [(float(r["start"]), float(r["stop"]) - float(r["start"]),
            r["class"] if r["instance"] == "." else f"{r['class']}:{r['instance']}")
           for r in rows]
    want = [(o, d, t.split(" ")[0]) for o, d, t in expected(n)]
    assert_same(got, want, [50.0])
    t0 = math.floor(n.result.start)
    lms = {(round(m.start - t0, 3), leg.side): m for leg in n.result.legs for m in leg.lms}
    for r in (r for r in rows if r["class"] == "LM"):
        meta = dict(kv.split("=") for kv in r["meta"].split(";"))
        m = lms.pop((float(r["start"]), r["instance"]))
        assert meta["in_sleep"] == str(int(m.in_sleep))
        assert meta["periodic"] == str(int(m.periodic))
        assert meta.get("bilateral_group") == (
            None if m.bilateral_group is None else str(m.bilateral_group))
    assert not lms
    notes = [r["meta"] for r in rows if r["class"] == "journal"]
    assert notes == ['text="38,5 °C; gave paracetamol"', 'text="the right leg shook for a minute '
                     'and stopped when I held it; she did not wake up and went on sleeping '
                     'quietly"', "."]


def test_luna_reads_the_edf_and_sidecar(tmp_path: Path) -> None:
    lp = pytest.importorskip("lunapi")
    n = night("mixed")
    edf = write(tmp_path, "mixed")
    annot = tmp_path / "mixed.annot"
    annot.write_text(luna_annot(n.result, n.legs, notes=n.notes))
    inst = lp.proj().inst("mixed")
    inst.attach_edf(str(edf))
    inst.attach_annot(str(annot))
    inst.eval("HEADERS")
    channels = inst.table("HEADERS", "CH").set_index("CH")["SR"].to_dict()
    assert channels == {f"Accel_{a}_{s}": x.sample_rate_hz
                        for x in n.result.legs for s in [x.side] for a in "XYZ"}
    inst.eval("ANNOTS")
    counts = inst.table("ANNOTS", "ANNOT_INST").set_index(["ANNOT", "INST"])["COUNT"].to_dict()
    for side in n.legs:
        assert counts[("LM", side)] == sum(len(x.lms) for x in n.result.legs if x.side == side)
        assert counts[("edf_annot", f"LM:{side}")] == counts[("LM", side)]
    assert counts[("PLM_series", ".")] == len(n.result.plm_series)
    assert counts[("journal", "fever")] == 1


def test_the_export_is_the_same_bytes_each_time() -> None:
    n = night("nonwear")

    def once() -> bytes:
        return night_edf(n.result, n.legs, full_scale_g=n.full_scale_g, subject=SUBJECT,
                         notes=n.notes, algorithm_version=VERSION)

    assert once() == once()


def test_values_beyond_full_scale_are_clipped_and_bad_inputs_refused(tmp_path: Path) -> None:
    n = night("nonwear")
    path = tmp_path / "clipped.edf"
    path.write_bytes(night_edf(n.result, n.legs, full_scale_g=0.5, subject=SUBJECT,
                               algorithm_version=VERSION))
    with pyedflib.EdfReader(str(path)) as f:
        largest = max(np.abs(f.readSignal(k)).max() for k in range(3))
    assert largest == pytest.approx(0.5)  # gravity puts >= 0.58 g on some axis
    with pytest.raises(BadInput, match="full scale"):
        night_edf(n.result, n.legs, full_scale_g=0, subject=SUBJECT, algorithm_version=VERSION)
    with pytest.raises(BadInput, match="legs"):
        night_edf(n.result, {}, full_scale_g=8, subject=SUBJECT, algorithm_version=VERSION)
