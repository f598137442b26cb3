"""What the mixer played, as a WAV file: SDL's ``disk`` audio driver writes the raw output stream
(in the format the mixer opened, in real time, silences included) to SDL_DISKAUDIOFILE; this wraps
it in a WAV header so anyone can listen to it. Used by `kiosk demo --sound` and the tests.
"""

from __future__ import annotations

import os
import wave
from pathlib import Path

import numpy as np

# SDL's name of the driver, and the variable that names its output file.
DISK_DRIVER = "disk"
DISK_FILE_VARIABLE = "SDL_DISKAUDIOFILE"


def use_disk_driver(raw: Path) -> None:
    """Make the next mixer opened in this process write to ``raw`` instead of a sound card."""
    os.environ["SDL_AUDIODRIVER"] = DISK_DRIVER
    os.environ[DISK_FILE_VARIABLE] = str(raw)


def raw_to_wav(raw: Path, wav: Path, frequency: int, size: int, channels: int) -> float:
    """Wrap the disk driver's raw output (signed 16-bit little-endian, as the player opens the
    mixer) into a WAV file; returns its length in seconds."""
    if size != -16:
        raise ValueError(f"only signed 16-bit output can be converted, the mixer had size {size}")
    data = Path(raw).read_bytes()
    frame = 2 * channels
    data = data[: len(data) - len(data) % frame]
    with wave.open(str(wav), "wb") as out:
        out.setnchannels(channels)
        out.setsampwidth(2)
        out.setframerate(frequency)
        out.writeframes(data)
    return len(data) / frame / frequency


def read_wav(path: Path) -> tuple[np.ndarray, int]:
    """A 16-bit WAV file as float samples (-1..1) of its first channel, and its rate."""
    with wave.open(str(path), "rb") as source:
        if source.getsampwidth() != 2:
            raise ValueError(f"{path}: not 16-bit")
        channels, rate = source.getnchannels(), source.getframerate()
        data = np.frombuffer(source.readframes(source.getnframes()), dtype="<i2")
    return data[::channels].astype(np.float64) / 32768.0, rate


# --- what is in a recording, as a listener would tell (used by the tests) ---------------------------

def bursts(signal: np.ndarray, rate: int, threshold: float = 0.01, gap_s: float = 0.6) -> list[tuple[int, int]]:
    """The stretches of sound in ``signal``, as (start, end) sample indices: 10 ms windows louder
    than ``threshold`` (RMS), joined across pauses shorter than ``gap_s`` (a pause between words)."""
    window = max(1, rate // 100)
    count = len(signal) // window
    if count == 0:
        return []
    rms = np.sqrt(np.mean(signal[: count * window].reshape(count, window) ** 2, axis=1))
    loud = np.flatnonzero(rms > threshold)
    found: list[tuple[int, int]] = []
    for index in loud.tolist():
        start, end = index * window, (index + 1) * window
        if found and start - found[-1][1] <= gap_s * rate:
            found[-1] = (found[-1][0], end)
        else:
            found.append((start, end))
    return found


def dominant_frequency(signal: np.ndarray, rate: int) -> float:
    """The frequency (Hz) with the most energy: the pitch a listener hears in a tone."""
    spectrum = np.abs(np.fft.rfft(signal * np.hanning(len(signal))))
    spectrum[0] = 0.0
    return float(np.fft.rfftfreq(len(signal), 1.0 / rate)[int(np.argmax(spectrum))])


def best_match(signal: np.ndarray, piece: np.ndarray) -> tuple[float, int]:
    """Where ``piece`` sounds in ``signal``, at any loudness: (normalised cross-correlation 0..1, offset).
    1.0 is the piece played exactly (only louder or softer); unrelated sounds stay far below."""
    if len(piece) == 0 or len(signal) < len(piece):
        return 0.0, 0
    size = 1 << int(np.ceil(np.log2(len(signal) + len(piece))))
    correlation = np.fft.irfft(np.fft.rfft(signal, size) * np.conj(np.fft.rfft(piece, size)), size)[: len(signal) - len(piece) + 1]
    energy = np.concatenate(([0.0], np.cumsum(signal ** 2)))
    local = np.sqrt(np.maximum(energy[len(piece):] - energy[: -len(piece)], 1e-12))
    score = correlation / (local * np.sqrt(np.sum(piece ** 2)))
    offset = int(np.argmax(score))
    return float(score[offset]), offset
