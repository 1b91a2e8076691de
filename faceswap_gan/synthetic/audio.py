"""A synthetic speech-like voice and its loudness envelope (which drives the mouth).

Syllables of 120-300 ms grouped into phrases of 3-12 with pauses between, a voiced
source (harmonics of a pitch that wanders like intonation) shaped by two formants
whose first one rises as the mouth opens, and short noise bursts for consonants. It is
not language; it is the rhythm and spectrum a lip-sync or audio-copy check needs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import gaussian_filter1d

AUDIO_RATE = 16_000


@dataclass
class SpeechTrack:
    samples: np.ndarray  # (n,) float32 mono in [-1, 1]
    envelope: np.ndarray  # (n,) float32 syllable loudness in [0, 1], the mouth's target
    rate: int

    def envelope_at(self, times: np.ndarray) -> np.ndarray:
        """Envelope sampled at ``times`` seconds (0 beyond the end)."""
        idx = np.round(np.asarray(times) * self.rate).astype(np.int64)
        inside = (idx >= 0) & (idx < len(self.envelope))
        out = np.zeros(len(idx), dtype=np.float32)
        out[inside] = self.envelope[idx[inside]]
        return out


def syllable_envelope(rng: np.random.Generator, seconds: float, rate: int,
                      active: np.ndarray | None = None) -> np.ndarray:
    """Loudness over time: raised-cosine syllables in phrases, silence between phrases.

    ``active`` (per sample, 0/1) gates speech to the speaker's turns.
    """
    n = round(seconds * rate)
    env = np.zeros(n, dtype=np.float64)
    t = rng.uniform(0.05, 0.6)
    while t < seconds:
        for _ in range(int(rng.integers(3, 13))):
            dur = rng.uniform(0.12, 0.30)
            peak = rng.uniform(0.45, 1.0)
            length = int(dur * rate)
            a = int(t * rate)
            if a >= n:
                break
            b = min(a + length, n)
            phase = np.linspace(0, 1, length, endpoint=False)[: b - a]
            env[a:b] = np.maximum(env[a:b], peak * np.sin(np.pi * phase) ** 1.5)
            t += dur + rng.uniform(0.0, 0.06)
        t += rng.uniform(0.25, 0.9)  # breath between phrases
    if active is not None:
        gate = gaussian_filter1d(active[:n].astype(np.float64), 0.05 * rate)  # 50 ms fades
        env *= gate
    return env.astype(np.float32)


def synth_speech(rng: np.random.Generator, seconds: float, rate: int = AUDIO_RATE,
                 base_pitch: float | None = None, active: np.ndarray | None = None) -> SpeechTrack:
    """A voice track of ``seconds`` with its envelope; same seed, same samples."""
    env = syllable_envelope(rng, seconds, rate, active)
    n = len(env)
    t = np.arange(n) / rate
    f0_base = base_pitch if base_pitch is not None else rng.uniform(110, 210)
    # Intonation: slow wander plus a fall over each phrase-length stretch.
    wander = gaussian_filter1d(rng.standard_normal(n // 160 + 8), 20)[: n // 160 + 1]
    wander = np.interp(np.arange(n) / 160, np.arange(len(wander)), wander)
    f0 = f0_base * (1 + 0.08 * wander / (np.std(wander) + 1e-9))
    phase = 2 * np.pi * np.cumsum(f0) / rate
    f1 = 350 + 500 * env  # the first formant rises as the mouth opens
    f2 = 1500 + 300 * np.sin(2 * np.pi * 0.7 * t + rng.uniform(0, 6.28))
    voice = np.zeros(n)
    for k in range(1, 24):
        fk = k * f0
        weight = (np.exp(-((fk - f1) / 180.0) ** 2) + 0.5 * np.exp(-((fk - f2) / 250.0) ** 2)
                  + 0.05) / k ** 0.5
        voice += weight * np.sin(k * phase)
    # Consonant bursts: 20 ms of quiet noise where a syllable starts from near silence.
    onset = ((np.diff(env, prepend=0.0) > 0) & (env < 0.12)).astype(np.float64)
    burst = gaussian_filter1d(onset, 0.01 * rate) * rng.standard_normal(n)
    voice = env * voice / (float(np.abs(voice).max()) or 1.0)
    signal = voice + 0.08 * burst / (float(np.abs(burst).max()) or 1.0)
    peak = float(np.abs(signal).max()) or 1.0
    signal = 0.6 * signal / peak
    return SpeechTrack(samples=signal.astype(np.float32), envelope=env, rate=rate)


def mouth_from_envelope(env: np.ndarray, rng: np.random.Generator | None = None) -> np.ndarray:
    """Mouth opening (inner-lip gap / eye distance) for envelope values in [0, 1].

    Closed lips at silence, about 0.45 of the eye distance at the loudest syllables.
    """
    env = np.clip(np.asarray(env, dtype=np.float64), 0, 1)
    return 0.01 + 0.44 * env ** 0.8
