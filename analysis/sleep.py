"""Sleep/wake in 30-s epochs from ankle movement, for infants and children.

Wrist algorithms (Sadeh, Cole-Kripke) are fitted to wrist activity counts of adults and count
every movement as evidence of wake. At the ankle, in children with periodic limb movements, that
turns PLM series into "wake". Here the evidence of wake is the time spent moving, per epoch, in
movements that are not part of a PLM series, brief jerks or tremor: sustained, irregular
movement, which is what a waking child does. Per epoch, the moving share of the most active leg
is smoothed with the Oakley/Actiware weights (1/25, 1/5, 1, 1/5, 1/25) and compared with
`WAKE_THRESHOLD`; sleep runs shorter than `MIN_SLEEP_RUN` epochs between wake are rescored wake
(in the spirit of Webster's rescoring). An epoch is `N` when no sensor has worn data for at least
half of it.

Limits: quiet wake (lying awake without moving) reads as sleep, as with all actigraphy; the
threshold was set on simulated nights, not on polysomnography.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from analysis.grid import runs

EPOCH_S = 30.0
OAKLEY_WEIGHTS = np.array([1 / 25, 1 / 5, 1.0, 1 / 5, 1 / 25])
WAKE_THRESHOLD = 0.35  # smoothed moving share above which an epoch is wake
MIN_SLEEP_RUN = 3  # epochs; shorter sleep runs between wake become wake
MIN_DATA_SHARE = 0.5  # of an epoch, for it to be scored
MIN_AWAKENING_EPOCHS = 2  # a wake bout of >= 1 min after sleep onset counts as an awakening
METHOD = (
    "ankle movement time outside PLM series and jerks, Oakley-weighted, "
    f"wake above {WAKE_THRESHOLD:.2f} of an epoch, sleep runs < {MIN_SLEEP_RUN} epochs rescored"
)


def score(moving_s: np.ndarray, data_share: np.ndarray) -> str:
    """Epoch string of S/W/N.

    moving_s: (n,) seconds of wake-evidence movement per epoch (most active leg);
    data_share: (n,) 0-1 share of the epoch with worn data (best leg).
    """
    scored = data_share >= MIN_DATA_SHARE
    share = np.where(scored, np.clip(moving_s / EPOCH_S, 0.0, 1.0), 0.0)
    smooth = np.convolve(share, OAKLEY_WEIGHTS, mode="same")
    wake = smooth > WAKE_THRESHOLD
    sleep_s, sleep_e = runs(~wake & scored)
    for s, e in zip(sleep_s, sleep_e, strict=True):
        bounded = s > 0 and e < wake.size and wake[s - 1] and wake[e]
        if bounded and e - s < MIN_SLEEP_RUN:
            wake[s:e] = True
    labels = np.where(wake, "W", "S")
    labels[~scored] = "N"
    return "".join(labels.tolist())


@dataclass(frozen=True, slots=True)
class SleepSummary:
    onset_epoch: int | None
    offset_epoch: int | None  # last sleep epoch
    total_sleep_min: float
    efficiency: float  # sleep / scored epochs
    waso_min: float
    awakenings: int


def summarize(epochs: str) -> SleepSummary:
    """The usual figures from an epoch string."""
    arr = np.frombuffer(epochs.encode(), dtype="S1")
    sleep = arr == b"S"
    scored = np.count_nonzero(arr != b"N")
    n_sleep = int(np.count_nonzero(sleep))
    if n_sleep == 0:
        return SleepSummary(None, None, 0.0, 0.0, 0.0, 0)
    idx = np.flatnonzero(sleep)
    onset, offset = int(idx[0]), int(idx[-1])
    wake_in = arr[onset:offset + 1] == b"W"
    ws, we = runs(wake_in)
    return SleepSummary(
        onset_epoch=onset,
        offset_epoch=offset,
        total_sleep_min=n_sleep * EPOCH_S / 60,
        efficiency=n_sleep / scored if scored else 0.0,
        waso_min=float(np.count_nonzero(wake_in)) * EPOCH_S / 60,
        awakenings=int(np.count_nonzero((we - ws) >= MIN_AWAKENING_EPOCHS)),
    )
