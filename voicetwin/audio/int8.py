"""The HiFi-GAN generator with its first three upsampling stages in int8, for CPU speed.

The V1 generator spends about 53 GFLOP per second of 22.05 kHz audio: 11 in the 256-channel stage, 23 in the
128-channel stage, 11 in the 64-channel stage and 6 in the last, 32-channel stage at the full rate. ONNX Runtime
runs int8 convolutions about three times as fast as float32 ones on CPUs with VNNI. Measured on copy synthesis of
held-out festvox-ru recordings (``bench/vocoder.py``), quantising the first three stages keeps every judge within
noise, while quantising the last one as well costs about 0.2 DNSMOS and 0.05 on the d-vector judge: the last stage
and the output convolution stay in float32 (``INT8_STAGES``).

Static quantisation needs each activation's range. Those were measured once by ``recipes/vocoder_int8`` on the
universal generator over many speakers and levels, and ship in ``hifigan_int8.json`` beside this module, tagged
with the generator's fingerprint: other weights have other ranges, so they render in float32.

    table = calibration_table()                                  # None when it is missing
    quantize(fp32_onnx, int8_onnx, table)                        # QDQ int8, per-channel weights
"""

from __future__ import annotations

import json
import re
import tempfile
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from ..errors import CheckpointError, require
from ..files import atomic_path, write_json

INT8_STAGES = (0, 1, 2)  # upsampling stages (and their residual blocks) in int8; the full-rate stage stays float32
TABLE = Path(__file__).with_name("hifigan_int8.json")
_NODE = re.compile(r"/(resblocks|ups)\.(\d+)/")


def stage_of(node: str) -> int | None:
    """The upsampling stage an exported node of the V1 generator belongs to (``ups.N``, or ``resblocks.M`` with its
    three residual blocks per stage), or None (the input and output convolutions)."""
    m = _NODE.search(node)
    if not m:
        return None
    return int(m.group(2)) // 3 if m.group(1) == "resblocks" else int(m.group(2))


def _prepared(fp32: Path, out: Path) -> Path:
    """ONNX Runtime's pre-processing (shape inference, graph clean-up), which the ranges are named after."""
    from onnxruntime.quantization import quant_pre_process

    if not out.exists():
        with atomic_path(out) as tmp:
            quant_pre_process(str(fp32), str(tmp))
    return out


def _excluded(model_path: Path, stages: Iterable[int]) -> list[str]:
    import onnx

    keep = set(stages)
    return [n.name for n in onnx.load(str(model_path)).graph.node if stage_of(n.name) not in keep]


def calibrate(fp32: str | Path, mels: Iterable[np.ndarray], fingerprint: str, out: str | Path,
              stages: tuple[int, ...] = INT8_STAGES) -> Path:
    """Measure the activation ranges of the exported generator ``fp32`` on ``mels`` (each ``(num_mels, frames)``)
    with a moving-average min/max, and write them as the table ``quantize`` reads."""
    require("onnxruntime", "vocoder", "int8 calibration")
    from onnxruntime.quantization import CalibrationDataReader, CalibrationMethod, create_calibrator

    fp32 = Path(fp32)
    prepared = _prepared(fp32, fp32.with_suffix(".prep.onnx"))
    feeds = iter([{"mel": np.ascontiguousarray(m[None], dtype=np.float32)} for m in mels])

    class Reader(CalibrationDataReader):
        def get_next(self):
            return next(feeds, None)

    with tempfile.TemporaryDirectory() as tmp:
        calibrator = create_calibrator(str(prepared), None, Path(tmp) / "augmented.onnx", CalibrationMethod.MinMax,
                                       extra_options={"moving_average": True})
        calibrator.collect_data(Reader())
        ranges = calibrator.compute_data()
    data = {name: [float(np.asarray(r.range_value[0]).min()), float(np.asarray(r.range_value[1]).max())]
            for name, r in ranges.data.items()}
    write_json(Path(out), {"fingerprint": fingerprint, "stages": list(stages), "ranges": data}, indent=None)
    return Path(out)


def calibration_table(path: str | Path = TABLE) -> dict | None:
    """The shipped ranges (``{"fingerprint", "stages", "ranges"}``), or None when the file is missing."""
    path = Path(path)
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"the int8 calibration table is not valid JSON ({exc})", path=path,
                              fix="reinstall voicetwin, or run recipes/vocoder_int8/calibrate.py") from exc


def quantize(fp32: str | Path, out: str | Path, table: dict) -> Path:
    """Write ``out``: the exported generator ``fp32`` with the stages in ``table`` as int8 QDQ (per-channel int8
    weights, uint8 activations in the table's ranges), atomically."""
    require("onnxruntime", "vocoder", "the int8 vocoder")
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.calibrate import TensorData, TensorsData, save_tensors_data

    fp32, out = Path(fp32), Path(out)
    prepared = _prepared(fp32, fp32.with_suffix(".prep.onnx"))
    ranges = TensorsData(CalibrationMethod.MinMax, {k: TensorData(lowest=np.float32(lo), highest=np.float32(hi))
                                                    for k, (lo, hi) in table["ranges"].items()})
    with tempfile.TemporaryDirectory() as tmp, atomic_path(out) as target:
        cache = Path(tmp) / "ranges.json"
        save_tensors_data(ranges, cache)
        quantize_static(str(prepared), str(target), None, calibration_cache_path=str(cache),
                        calibrate_method=CalibrationMethod.MinMax, quant_format=QuantFormat.QDQ, per_channel=True,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                        nodes_to_exclude=_excluded(prepared, table["stages"]))
    return out


__all__ = ["INT8_STAGES", "TABLE", "calibrate", "calibration_table", "quantize", "stage_of"]
