"""The tones, generated with numpy: nothing to install or render.

- ``pass``: a bright rising two-note chime (E5 then B5, a fifth up), like a door chime;
- ``refuse``: a low falling two-note tone (G4 then D4), with a little harmonic edge so it is heard
  over a crowd but does not shriek;
- ``attention``: three short mid beeps, before "out of service".

PASS and REFUSE sit an octave and more apart and move in opposite directions, so they are told
apart without looking at the screen, and by people who cannot read either language.
"""

from __future__ import annotations

import io
import wave

import numpy as np

RATE = 22050  # Hz, the clips' rate too: the mixer plays both without resampling
AMPLITUDE = 0.45  # of full scale: tones sit a little under speech

# Each tone: (frequency in Hz, seconds, harmonic share) notes, with a short silence between.
NOTES: dict[str, tuple[tuple[float, float, float], ...]] = {
    "pass": ((659.3, 0.14, 0.0), (987.8, 0.30, 0.0)),
    "refuse": ((392.0, 0.22, 0.25), (293.7, 0.40, 0.25)),
    "attention": ((587.3, 0.10, 0.1), (587.3, 0.10, 0.1), (587.3, 0.10, 0.1)),
}
GAP_S = 0.05
FADE_S = 0.012  # rise and fall of each note: no clicks


def _note(frequency: float, seconds: float, harmonic: float) -> np.ndarray:
    t = np.arange(int(RATE * seconds)) / RATE
    wave_ = np.sin(2 * np.pi * frequency * t) + harmonic * np.sin(2 * np.pi * 3 * frequency * t)
    wave_ /= 1 + harmonic
    fade = min(int(RATE * FADE_S), len(t) // 2)
    envelope = np.ones(len(t))
    envelope[:fade] = np.linspace(0, 1, fade)
    envelope[-fade:] = np.linspace(1, 0, fade)
    # A gentle decay, as a struck chime has.
    envelope *= np.exp(-1.5 * t / max(seconds, 1e-3))
    return wave_ * envelope


def samples(name: str) -> np.ndarray:
    """The tone ``name`` as mono int16 samples at RATE."""
    gap = np.zeros(int(RATE * GAP_S))
    parts: list[np.ndarray] = []
    for frequency, seconds, harmonic in NOTES[name]:
        parts += [_note(frequency, seconds, harmonic), gap]
    signal = np.concatenate(parts[:-1])
    return np.round(signal * AMPLITUDE * 32767).astype(np.int16)


def wav_bytes(name: str) -> bytes:
    """The tone ``name`` as a mono 16-bit WAV file in memory (what pygame.mixer.Sound reads)."""
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(RATE)
        out.writeframes(samples(name).astype("<i2").tobytes())
    return buffer.getvalue()


def names() -> tuple[str, ...]:
    return tuple(NOTES)
