"""Rooms: simulated room impulse responses (RIRs) and reverberation.

A room is a shoebox (length, width, height in metres) whose wall absorption gives a reverberation time
``rt60_s`` (seconds, Sabine's formula, :func:`pyroomacoustics.inverse_sabine`), with a talker and a
microphone ``mic_distance_m`` metres apart, both at least :data:`WALL_MARGIN_M` from the walls.
pyroomacoustics' image-source method simulates its RIR. Simulating takes 0.05-0.5 s per room, so the corpus
simulates a bank of rooms once per seed and condition (:func:`room_bank`: :data:`BANK_SIZE` rooms, seen ones
for train/dev/test, unseen ones for transfer) and each utterance picks one, or none: :data:`DRY_SHARE` of
the clips of every split are close-talk recordings without a room (the same share in the transfer split, so that
its PER compares with the test set's on the same mix; its other clips are in rooms no seen clip uses). Reverberation
is a convolution (:func:`reverberate`, scipy's FFT overlap-add).

RT60 and talker-microphone distance are :class:`asrprune.synth.conditions.Interleaved` ranges, so the transfer
rooms' values lie between the training rooms' values.
"""
from __future__ import annotations

import dataclasses

import numpy as np
import pyroomacoustics
import scipy.signal

from asrprune.synth.conditions import SEEN, UNSEEN, Interleaved

ROOM_LENGTH_M = (3.0, 10.0)
ROOM_WIDTH_M = (2.5, 8.0)  # at most the length
ROOM_HEIGHT_M = (2.4, 4.0)
TALKER_HEIGHT_M = (1.1, 1.9)
RT60_S = Interleaved(0.15, 0.5)
MIC_DISTANCE_M = Interleaved(0.3, 1.5)
WALL_MARGIN_M = 0.4
DRY_SHARE = {SEEN: 2 / 3, UNSEEN: 2 / 3}  # most Common Voice clips are close-talk; rooms cost 7 PER points (cal. 4)
BANK_SIZE = {SEEN: 24, UNSEEN: 12}
RIR_LEAD_SAMPLES = 32  # kept before the direct path's peak (the fractional-delay filter's left half)
RIR_FLOOR_DB = -60.0  # the RIR ends where the energy still to come falls this far below the total
MAX_DRAWS = 1000


@dataclasses.dataclass(frozen=True)
class Room:
    """One simulated recording room; lengths in metres, ``rt60_s`` in seconds."""

    room_id: str
    dimensions_m: tuple[float, float, float]
    rt60_s: float
    talker_m: tuple[float, float, float]
    mic_m: tuple[float, float, float]
    mic_distance_m: float


def draw_room(rng: np.random.Generator, condition: str, room_id: str) -> Room:
    """A room with ``condition``'s RT60 and distance whose walls can absorb enough for that RT60 and which
    fits talker and microphone; redraws until one does (raises ``RuntimeError`` after :data:`MAX_DRAWS`)."""
    for _ in range(MAX_DRAWS):
        length = rng.uniform(*ROOM_LENGTH_M)
        dimensions = np.array([length, rng.uniform(ROOM_WIDTH_M[0], min(ROOM_WIDTH_M[1], length)),
                               rng.uniform(*ROOM_HEIGHT_M)])
        rt60, distance = RT60_S.draw(rng, condition), MIC_DISTANCE_M.draw(rng, condition)
        try:
            pyroomacoustics.inverse_sabine(rt60, dimensions)
        except ValueError:  # walls would have to absorb more than everything: room too large for this RT60
            continue
        talker = np.array([*rng.uniform(WALL_MARGIN_M, dimensions[:2] - WALL_MARGIN_M), rng.uniform(*TALKER_HEIGHT_M)])
        angle = rng.uniform(0, 2 * np.pi)
        mic = talker + distance * np.array([np.cos(angle), np.sin(angle), 0.0])
        if np.all(mic[:2] >= WALL_MARGIN_M) and np.all(mic[:2] <= dimensions[:2] - WALL_MARGIN_M):
            return Room(room_id, _floats(dimensions), float(rt60), _floats(talker), _floats(mic), float(distance))
    raise RuntimeError(f"no {condition} room found in {MAX_DRAWS} draws")


def simulate_rir(room: Room, sample_rate: int) -> np.ndarray:
    """The room's impulse response from talker to microphone at ``sample_rate`` Hz: float32 (samples,),
    starting :data:`RIR_LEAD_SAMPLES` before the direct path's peak, which is scaled to 1, and ending where
    the energy still to come (Schroeder's backward integral) is :data:`RIR_FLOOR_DB` below the total."""
    absorption, max_order = pyroomacoustics.inverse_sabine(room.rt60_s, room.dimensions_m)
    shoebox = pyroomacoustics.ShoeBox(
        room.dimensions_m, fs=sample_rate, materials=pyroomacoustics.Material(absorption), max_order=max_order
    )
    shoebox.add_source(room.talker_m)
    shoebox.add_microphone(room.mic_m)
    shoebox.compute_rir()
    rir = np.asarray(shoebox.rir[0][0], dtype=np.float64)
    peak = int(np.argmax(np.abs(rir)))
    rir = rir[max(0, peak - RIR_LEAD_SAMPLES):] / np.abs(rir[peak])
    energy_to_come = np.cumsum(np.square(rir)[::-1])[::-1]
    end = int(np.searchsorted(-energy_to_come, -energy_to_come[0] * 10 ** (RIR_FLOOR_DB / 10)))
    return rir[:max(end, RIR_LEAD_SAMPLES + 1)].astype(np.float32)


def room_bank(rng: np.random.Generator, condition: str, sample_rate: int) -> tuple[tuple[Room, np.ndarray], ...]:
    """:data:`BANK_SIZE` ``[condition]`` rooms with their RIRs at ``sample_rate`` Hz; ids ``S01``.. (seen)
    or ``U01``.. (unseen)."""
    prefix = condition[0].upper()
    rooms = [draw_room(rng, condition, f"{prefix}{n + 1:02d}") for n in range(BANK_SIZE[condition])]
    return tuple((room, simulate_rir(room, sample_rate)) for room in rooms)


def draw_room_choice(rng: np.random.Generator, condition: str) -> int | None:
    """Which room of ``condition``'s bank an utterance is recorded in (an index), or ``None`` for a dry one."""
    if rng.uniform() < DRY_SHARE[condition]:
        return None
    return int(rng.integers(BANK_SIZE[condition]))


def reverberate(samples: np.ndarray, rir: np.ndarray) -> np.ndarray:
    """``samples`` convolved with ``rir`` (same sample rate): float32, ``len(samples) + len(rir) - 1``
    samples, the room's decay after the end included."""
    return scipy.signal.oaconvolve(samples, rir).astype(np.float32)


def _floats(values: np.ndarray) -> tuple[float, ...]:
    return tuple(round(float(v), 4) for v in values)
