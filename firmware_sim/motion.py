"""Physics of a triaxial accelerometer worn at the ankle of a sleeping child (pure functions).

Everything here is per leg, in the sensor frame, in g, gravity included, on the nominal sample
grid ``t_i = i / fs`` (seconds since the start of the recording). Nothing here knows about radio
packets: :func:`render_leg` returns the continuous, quantised signal a sensor would produce; packet
loss, disconnections and timestamps are added by the caller (``night.py``, or a simulated radio).

The model, in the order the terms are summed:

1. **Gravity through posture.** The static reading is a unit vector (|a| = 1 g), the direction
   of gravity's reaction seen in the sensor frame. A lying leg starts with the shank near
   horizontal (x along the shank, pitch ~ N(0, 10 deg)) and a random roll. A posture change is a
   big movement that turns the sensor frame by 20-90 deg about a random axis, smoothly (cosine
   ramp) over the movement, and the new orientation stays. Taking the sensor off or putting it
   back is a movement whose end orientation is given instead (the great-circle path is used).
2. **Limb rotation during an LM.** 3-20 deg about a random axis with a half-sine profile (out and
   back) over the LM: the orientation returns. Weak LMs rotate only 0.3-1 deg so that they stay
   near the noise floor.
3. **Band-limited dynamic acceleration** during every movement: white noise band-passed
   (4th-order Butterworth, 0.7-6 Hz for LMs, 2-10 Hz for jerks; filtered on a short buffer with a
   1-s warm-up), scaled so that its vector RMS is the movement amplitude A, times an envelope that
   is flat over [start, end] with 50-ms cosine tapers *inside* the interval. Modelling assumption:
   activity is sustained for the whole LM, so the true interval is well defined. Real LMs that
   include an isometric hold would look shorter to an accelerometer than to EMG.
4. **Breathing micro-motion** while the sensor is on the ankle (also awake): a sinusoid along a
   fixed random direction, 1.5-3 mg, frequency by age with a slow +-10 % drift. Absent off-ankle.
5. **Tremor / jitteriness**: a sinusoid along a fixed random direction, frequency drifting
   +-10 % slowly, peak amplitude with +-30 % slow modulation, 0.5-s cosine ramps. Two legs in the
   same episode share the frequency profile (and so stay coherent) but not direction or amplitude.
6. **Sensor noise**: white Gaussian per axis, sigma from the scenario.
7. **Quantisation** to ``counts_per_g`` and **clipping** at +-``range_g``; output float32 in g.

Off the ankle the sensor lies on a surface: one axis near +-1 g with a small tilt, noise only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy.signal import butter, sosfilt

Vec3 = tuple[float, float, float]
FloatArray = np.ndarray

LM_BAND_HZ = (0.7, 6.0)
JERK_BAND_HZ = (2.0, 10.0)
TAPER_S = 0.05  # cosine taper inside each movement interval
FILTER_WARMUP_S = 1.0  # noise filtered before the movement and dropped
TREMOR_RAMP_S = 0.5
TREMOR_FREQ_DRIFT = 0.10  # relative
TREMOR_AM_DEPTH = 0.30  # relative
BREATH_FREQ_DRIFT = 0.10  # relative


@dataclass(frozen=True, slots=True)
class Movement:
    """A burst of limb activity on one leg (times in s since the start of the recording)."""

    start: float
    end: float
    amplitude_g: float  # vector RMS of the dynamic acceleration on the flat part
    band_hz: tuple[float, float]
    swing_axis: Vec3 = (1.0, 0.0, 0.0)
    swing_deg: float = 0.0  # peak limb rotation, half-sine out and back
    turn_axis: Vec3 = (1.0, 0.0, 0.0)
    turn_deg: float = 0.0  # lasting posture rotation (cosine ramp); 0 = none
    target: Vec3 | None = None  # gravity direction after the movement; overrides the turn


@dataclass(frozen=True, slots=True)
class Tremor:
    """A tremor episode on one leg (times in s since the start of the recording)."""

    start: float
    end: float
    frequency_hz: float  # centre frequency
    amplitude_g: float  # peak amplitude before modulation
    direction: Vec3
    drift_period_s: float  # frequency drift f0 * (1 + 0.1 sin(2 pi t / P + phase))
    drift_phase: float  # rad
    am_period_s: float  # amplitude modulation A * (1 + 0.3 sin(2 pi t / P + phase))
    am_phase: float  # rad
    phase0: float  # rad, carrier phase offset of this leg


@dataclass(frozen=True, slots=True)
class Breathing:
    """Breathing micro-motion of one leg."""

    direction: Vec3
    amplitude_g: float
    frequency_hz: float
    drift_period_s: float
    drift_phase: float  # rad


@dataclass(frozen=True, slots=True)
class LegModel:
    """Everything needed to render one leg's continuous signal."""

    fs: float  # Hz
    n_samples: int
    noise_g: float  # per-axis sigma, g
    counts_per_g: int
    range_g: float
    initial_gravity: Vec3
    breathing: Breathing
    movements: tuple[Movement, ...]  # sorted by start, not overlapping
    tremors: tuple[Tremor, ...]
    off_ankle: tuple[tuple[float, float], ...]  # s since start: no breathing


def unit(v: Vec3 | FloatArray) -> FloatArray:
    """``v`` scaled to length 1."""
    a = np.asarray(v, dtype=np.float64)
    return a / np.linalg.norm(a)


def as_vec3(v: FloatArray) -> Vec3:
    """A 3-vector as a plain tuple."""
    return (float(v[0]), float(v[1]), float(v[2]))


def random_unit(rng: np.random.Generator) -> Vec3:
    """A direction uniform on the sphere."""
    return as_vec3(unit(rng.standard_normal(3)))


def rotate(
    v: Vec3 | FloatArray, axis: Vec3 | FloatArray, angle_rad: float | FloatArray
) -> FloatArray:
    """Rotate vector(s) ``v`` (3,) or (m, 3) about ``axis`` by ``angle_rad`` (scalar or (m,))."""
    vec = np.asarray(v, dtype=np.float64)
    ang = np.asarray(angle_rad, dtype=np.float64)
    k = unit(axis)
    c = np.cos(ang)[..., None]
    s = np.sin(ang)[..., None]
    kdv = (vec @ k)[..., None]
    return vec * c + np.cross(k, vec) * s + k * kdv * (1.0 - c)


def rotation_between(u: FloatArray, v: FloatArray) -> tuple[FloatArray, float]:
    """Axis and angle (rad) of the shortest rotation taking unit vector ``u`` to ``v``."""
    axis = np.cross(u, v)
    s = float(np.linalg.norm(axis))
    c = float(np.dot(u, v))
    if s > 1e-9:
        return axis / s, math.atan2(s, c)
    helper = np.array([1.0, 0.0, 0.0]) if abs(u[0]) < 0.9 else np.array([0.0, 1.0, 0.0])
    return unit(np.cross(u, helper)), (0.0 if c > 0 else math.pi)


def lying_gravity(rng: np.random.Generator) -> Vec3:
    """Static reading of a lying leg: shank (x) near horizontal, random roll about it."""
    pitch = math.radians(rng.normal(0.0, 10.0))
    roll = rng.uniform(-math.pi, math.pi)
    return (
        math.sin(pitch),
        math.cos(pitch) * math.sin(roll),
        math.cos(pitch) * math.cos(roll),
    )


def surface_gravity(rng: np.random.Generator) -> Vec3:
    """Static reading of a sensor lying on a surface: one axis near +-1 g, tilt 0-5 deg."""
    base = np.zeros(3)
    base[rng.integers(3)] = rng.choice([-1.0, 1.0])
    tilt_axis = unit(np.cross(base, rng.standard_normal(3)))
    return as_vec3(rotate(base, tilt_axis, math.radians(rng.uniform(0.0, 5.0))))


def sample_span(start: float, end: float, fs: float, n: int) -> tuple[int, int]:
    """Indices ``[i0, i1)`` of the samples with ``start <= i / fs <= end``, clipped to ``n``."""
    i0 = max(0, math.ceil(start * fs - 1e-9))
    i1 = min(n, math.floor(end * fs + 1e-9) + 1)
    return i0, max(i0, i1)


def cosine_ramp(x: FloatArray) -> FloatArray:
    """0 -> 1 smoothly for ``x`` in [0, 1] (clipped outside)."""
    return 0.5 - 0.5 * np.cos(np.pi * np.clip(x, 0.0, 1.0))


def flat_envelope(u: FloatArray, duration: float, taper: float) -> FloatArray:
    """1 over [0, duration] with cosine tapers of ``taper`` s inside; ``u`` is s since start."""
    edge = min(taper, duration / 2.0)
    if edge <= 0.0:
        return np.ones_like(u)
    return cosine_ramp(np.minimum(u, duration - u) / edge)


def drifting_phase(
    t: FloatArray, f0: float, depth: float, period_s: float, phase: float
) -> FloatArray:
    """Phase (rad) of a carrier whose frequency is ``f0 * (1 + depth sin(2 pi t / P + phase))``."""
    w = 2.0 * math.pi / period_s
    return 2.0 * math.pi * f0 * (t - depth / w * (np.cos(w * t + phase) - math.cos(phase)))


def mean_drifting_frequency(
    start: float, end: float, f0: float, depth: float, period_s: float, phase: float
) -> float:
    """Time-average (Hz) over [start, end] of ``f0 * (1 + depth sin(2 pi t / P + phase))``."""
    w = 2.0 * math.pi / period_s
    if end <= start:
        return f0 * (1.0 + depth * math.sin(w * start + phase))
    mean_sin = -(math.cos(w * end + phase) - math.cos(w * start + phase)) / (w * (end - start))
    return f0 * (1.0 + depth * mean_sin)


def tremor_mean_frequency(tremor: Tremor) -> float:
    """Mean frequency (Hz) of a tremor episode."""
    return mean_drifting_frequency(
        tremor.start,
        tremor.end,
        tremor.frequency_hz,
        TREMOR_FREQ_DRIFT,
        tremor.drift_period_s,
        tremor.drift_phase,
    )


def gravity_track(initial: Vec3, movements: tuple[Movement, ...], fs: float, n: int) -> FloatArray:
    """Static reading (n, 3) in g through all posture changes (swings not included)."""
    g = np.empty((n, 3), dtype=np.float64)
    current = unit(initial)
    filled = 0
    for mv in movements:
        if mv.target is None and mv.turn_deg == 0.0:
            continue
        i0, i1 = sample_span(mv.start, mv.end, fs, n)
        i0 = max(i0, filled)
        g[filled:i0] = current
        if mv.target is not None:
            after = unit(mv.target)
            axis, angle = rotation_between(current, after)
        else:
            axis, angle = unit(mv.turn_axis), math.radians(mv.turn_deg)
            after = rotate(current, axis, angle)
        if i1 > i0:
            tau = (np.arange(i0, i1) / fs - mv.start) / max(mv.end - mv.start, 1e-9)
            g[i0:i1] = rotate(current, axis, angle * cosine_ramp(tau))
        current = after
        filled = max(filled, i1)
    g[filled:] = current
    return g


def apply_swings(acc: FloatArray, movements: tuple[Movement, ...], fs: float) -> None:
    """Rotate the static reading in place by each movement's half-sine limb swing."""
    n = len(acc)
    for mv in movements:
        if mv.swing_deg == 0.0:
            continue
        i0, i1 = sample_span(mv.start, mv.end, fs, n)
        if i1 <= i0:
            continue
        tau = (np.arange(i0, i1) / fs - mv.start) / max(mv.end - mv.start, 1e-9)
        angle = math.radians(mv.swing_deg) * np.sin(np.pi * np.clip(tau, 0.0, 1.0))
        acc[i0:i1] = rotate(acc[i0:i1], mv.swing_axis, angle)


@lru_cache(maxsize=64)
def bandpass_sos(low_hz: float, high_hz: float, fs: float) -> FloatArray:
    """4th-order Butterworth band-pass (second-order sections); ``high`` capped at 0.45 fs."""
    high = min(high_hz, 0.45 * fs)
    low = min(low_hz, 0.5 * high)
    sos: FloatArray = butter(4, (low, high), btype="bandpass", fs=fs, output="sos")
    return sos


def add_dynamics(
    acc: FloatArray, movements: tuple[Movement, ...], fs: float, rng: np.random.Generator
) -> None:
    """Add each movement's band-limited acceleration (vector RMS = amplitude) in place."""
    n = len(acc)
    warm = round(FILTER_WARMUP_S * fs)
    for mv in movements:
        i0, i1 = sample_span(mv.start, mv.end, fs, n)
        if i1 <= i0 or mv.amplitude_g <= 0.0:
            continue
        sos = bandpass_sos(mv.band_hz[0], mv.band_hz[1], fs)
        x = sosfilt(sos, rng.standard_normal((warm + i1 - i0, 3)), axis=0)[warm:]
        rms = math.sqrt(float(np.mean(np.sum(x * x, axis=1))))
        env = flat_envelope(np.arange(i0, i1) / fs - mv.start, mv.end - mv.start, TAPER_S)
        acc[i0:i1] += x * (mv.amplitude_g / max(rms, 1e-12) * env)[:, None]


def worn_mask(n: int, fs: float, off_ankle: tuple[tuple[float, float], ...]) -> FloatArray:
    """Boolean (n,): True where the sensor is on the ankle."""
    mask = np.ones(n, dtype=bool)
    for start, end in off_ankle:
        i0, i1 = sample_span(start, end, fs, n)
        mask[i0:i1] = False
    return mask


def add_breathing(acc: FloatArray, breathing: Breathing, fs: float, worn: FloatArray) -> None:
    """Add breathing micro-motion in place where ``worn`` is True."""
    t = np.arange(len(acc)) / fs
    phase = drifting_phase(
        t,
        breathing.frequency_hz,
        BREATH_FREQ_DRIFT,
        breathing.drift_period_s,
        breathing.drift_phase,
    )
    wave = np.sin(phase, out=phase)
    wave *= worn
    for k, component in enumerate(breathing.amplitude_g * unit(breathing.direction)):
        acc[:, k] += component * wave


def add_tremors(acc: FloatArray, tremors: tuple[Tremor, ...], fs: float) -> None:
    """Add each tremor episode in place."""
    n = len(acc)
    for tr in tremors:
        i0, i1 = sample_span(tr.start, tr.end, fs, n)
        if i1 <= i0:
            continue
        t = np.arange(i0, i1) / fs
        phase = tr.phase0 + drifting_phase(
            t, tr.frequency_hz, TREMOR_FREQ_DRIFT, tr.drift_period_s, tr.drift_phase
        )
        am = 1.0 + TREMOR_AM_DEPTH * np.sin(2.0 * np.pi * t / tr.am_period_s + tr.am_phase)
        ramp = flat_envelope(t - tr.start, tr.end - tr.start, TREMOR_RAMP_S)
        wave = tr.amplitude_g * am * ramp * np.sin(phase)
        acc[i0:i1] += wave[:, None] * unit(tr.direction)


def quantise(acc: FloatArray, counts_per_g: int, range_g: float) -> FloatArray:
    """Round to whole counts, clip at +-range_g, return float32 g."""
    counts = acc * counts_per_g
    np.rint(counts, out=counts)
    full = math.floor(range_g * counts_per_g)
    np.clip(counts, -full, full, out=counts)
    out = np.empty(counts.shape, dtype=np.float32)
    np.divide(counts, counts_per_g, out=out, casting="same_kind")
    return out


def render_leg(model: LegModel, seed: np.random.SeedSequence) -> FloatArray:
    """Continuous quantised acceleration (n, 3) float32 in g of one leg.

    ``seed`` fixes the random parts (movement noise, sensor noise); the result depends only on
    ``model`` and ``seed`` (the seed sequence is not consumed).
    """
    fs, n = model.fs, model.n_samples
    acc = gravity_track(model.initial_gravity, model.movements, fs, n)
    apply_swings(acc, model.movements, fs)
    add_dynamics(acc, model.movements, fs, np.random.default_rng(child_seed(seed, 0)))
    add_breathing(acc, model.breathing, fs, worn_mask(n, fs, model.off_ankle))
    add_tremors(acc, model.tremors, fs)
    noise = np.random.default_rng(child_seed(seed, 1)).standard_normal((n, 3), dtype=np.float32)
    noise *= np.float32(model.noise_g)
    acc += noise
    return quantise(acc, model.counts_per_g, model.range_g)


def child_seed(seed: np.random.SeedSequence, index: int) -> np.random.SeedSequence:
    """The ``index``-th child of ``seed``, derived without mutating ``seed``."""
    return np.random.SeedSequence(seed.entropy, spawn_key=(*seed.spawn_key, index))
