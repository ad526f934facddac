"""Face detection and landmarks from models bundled in pip packages (no downloads).

Two independent landmark models, so that one can judge what the other produced:

- ``"mediapipe"``: MediaPipe Face Mesh (468 points, tracking between frames), from ``mediapipe==0.10.21``.
- ``"dlib"``: dlib's HOG face detector + 68-point shape predictor, from ``dlib-bin`` + ``face_recognition_models``.

A landmarker maps an RGB frame ``(height, width, 3)`` uint8 to a list of faces, each a float32 ``(points, 2)``
array of ``(x, y)`` pixel coordinates, largest face first. ``LAYOUTS`` names the points each model uses for the
mouth, the eyes and the nose, so the rest of voicetwin is model-agnostic.
"""

from __future__ import annotations

import contextlib
import io
import os
from dataclasses import dataclass

import numpy as np

from ..errors import ConfigError, require


@dataclass(frozen=True)
class Layout:
    """Indices of named landmarks in one model's point list."""

    points: int
    mouth_left: int
    mouth_right: int
    inner_pairs: tuple[tuple[int, int], ...]  # (upper lip, lower lip) pairs on the inner lip line
    outer_lips: tuple[int, ...]  # outer lip contour, in order
    stable: tuple[int, ...]  # eye corners and nose: points that do not move with speech
    eye_left: int
    eye_right: int
    nose: int
    chin: int


LAYOUTS = {
    "mediapipe": Layout(
        points=468, mouth_left=61, mouth_right=291,
        inner_pairs=((82, 87), (13, 14), (312, 317)),
        outer_lips=(61, 185, 40, 39, 37, 0, 267, 269, 270, 409, 291, 375, 321, 405, 314, 17, 84, 181, 91, 146),
        stable=(33, 133, 362, 263, 168, 6, 197, 195, 5, 4, 1, 98, 327),
        eye_left=33, eye_right=263, nose=2, chin=152,
    ),
    "dlib": Layout(
        points=68, mouth_left=48, mouth_right=54,
        inner_pairs=((61, 67), (62, 66), (63, 65)),
        outer_lips=tuple(range(48, 60)),
        stable=(36, 39, 42, 45, 27, 28, 29, 30, 31, 35),
        eye_left=36, eye_right=45, nose=33, chin=8,
    ),
}


def available_landmarkers() -> list[str]:
    return sorted(LAYOUTS)


@contextlib.contextmanager
def _quiet_stderr():
    """Silence native-library chatter on fd 2 (MediaPipe's glog/absl start-up lines) for one block
    (not under ``voicetwin --verbose``)."""
    from ..console import is_verbose

    if is_verbose():
        yield
        return
    try:
        saved = os.dup(2)
    except OSError:  # pragma: no cover - no fd 2
        yield
        return
    with open(os.devnull, "wb") as null, contextlib.redirect_stderr(io.StringIO()):
        os.dup2(null.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)


class MediaPipeLandmarker:
    """MediaPipe Face Mesh. With ``video=True`` landmarks are tracked from frame to frame (fast)."""

    name = "mediapipe"

    def __init__(self, max_faces: int = 1, video: bool = True):
        from ..console import mute_native_stderr

        # MediaPipe, TFLite and absl log from the graph's threads whenever they first meet something (the first
        # frame, the first face), so their stderr stays muted while the graph lives; Python's own stderr (progress,
        # errors) is untouched. ``voicetwin --verbose`` shows them.
        self._graph = None
        self._muted = mute_native_stderr()
        try:
            with _quiet_stderr():
                require("mediapipe", "video", "face landmarks")
                from mediapipe.python.solution_base import SolutionBase
                from mediapipe.python.solutions import face_mesh

                # Built from the graph directly: FaceMesh() writes calculator options through an API that
                # protobuf >= 6 removed; the graph's own thresholds (0.5) equal FaceMesh's defaults.
                self._graph = SolutionBase(
                    binary_graph_path=face_mesh._BINARYPB_FILE_PATH,
                    side_inputs={"num_faces": int(max_faces), "with_attention": False,
                                 "use_prev_landmarks": bool(video)},
                    outputs=["multi_face_landmarks"],
                )
        except BaseException:
            self.close()
            raise
        self._first = True

    def __call__(self, frame: np.ndarray) -> list[np.ndarray]:
        height, width = frame.shape[:2]
        if self._first:  # the graph starts (and logs to stderr) on its first frame
            with _quiet_stderr():
                result = self._graph.process({"image": np.ascontiguousarray(frame)})
            self._first = False
        else:
            result = self._graph.process({"image": np.ascontiguousarray(frame)})
        faces = []
        for face in result.multi_face_landmarks or []:
            pts = np.array([(p.x * width, p.y * height) for p in face.landmark[:468]], dtype=np.float32)
            faces.append(pts)
        return _largest_first(faces)

    def close(self) -> None:
        from ..console import unmute_native_stderr

        if getattr(self, "_graph", None) is not None:
            self._graph.close()
            self._graph = None
        if self._muted:
            self._muted = False
            unmute_native_stderr()

    def __del__(self):
        if getattr(self, "_muted", False):
            self.close()


class DlibLandmarker:
    """dlib HOG detector + 68-point shape predictor. ``upsample`` finds smaller faces, slower."""

    name = "dlib"

    def __init__(self, max_faces: int = 1, upsample: int = 0, max_side: int = 800):
        dlib = require("dlib", "video", "face landmarks (dlib)")
        with _quiet_stderr(), _no_warnings():
            models = require("face_recognition_models", "video", "the dlib 68-point model")
        self._dlib = dlib
        self._detector = dlib.get_frontal_face_detector()
        self._predictor = dlib.shape_predictor(models.pose_predictor_model_location())
        self.max_faces = max_faces
        self.upsample = upsample
        self.max_side = max_side

    def __call__(self, frame: np.ndarray) -> list[np.ndarray]:
        frame = np.ascontiguousarray(frame)
        scale = min(1.0, self.max_side / max(frame.shape[:2]))
        small = frame if scale == 1.0 else _resize(frame, scale)
        faces = []
        for rect in self._detector(small, self.upsample)[: self.max_faces]:
            r = self._dlib.rectangle(int(rect.left() / scale), int(rect.top() / scale),
                                     int(rect.right() / scale), int(rect.bottom() / scale))
            shape = self._predictor(frame, r)
            faces.append(np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float32))
        return _largest_first(faces)

    def close(self) -> None:
        pass



class FaceIdentifier:
    """dlib's face recognition ResNet: a 128-d descriptor per face; two faces of one person lie < 0.6 apart."""

    threshold = 0.6

    def __init__(self):
        dlib = require("dlib", "video", "telling people apart")
        with _quiet_stderr(), _no_warnings():
            models = require("face_recognition_models", "video", "the dlib face recognition model")
        self._dlib = dlib
        self._shape = dlib.shape_predictor(models.pose_predictor_five_point_model_location())
        self._net = dlib.face_recognition_model_v1(models.face_recognition_model_location())

    def __call__(self, frame: np.ndarray, points: np.ndarray) -> np.ndarray:
        """``(128,)`` float32 descriptor of the face whose landmarks (any model) are ``points``."""
        frame = np.ascontiguousarray(frame)
        x0, y0 = points.min(axis=0)
        x1, y1 = points.max(axis=0)
        rect = self._dlib.rectangle(int(x0), int(y0), int(x1), int(y1))
        shape = self._shape(frame, rect)
        return np.asarray(self._net.compute_face_descriptor(frame, shape), dtype=np.float32)


@contextlib.contextmanager
def _no_warnings():
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def _resize(frame: np.ndarray, scale: float) -> np.ndarray:
    cv2 = require("cv2", "video", "image resizing")
    return cv2.resize(frame, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)


def _largest_first(faces: list[np.ndarray]) -> list[np.ndarray]:
    return sorted(faces, key=lambda p: -float(np.ptp(p[:, 0]) * np.ptp(p[:, 1])))


def load_landmarker(name: str = "mediapipe", max_faces: int = 1, video: bool = True):
    """A landmarker by name: ``"mediapipe"`` (default, fast) or ``"dlib"``."""
    if name == "mediapipe":
        return MediaPipeLandmarker(max_faces=max_faces, video=video)
    if name == "dlib":
        return DlibLandmarker(max_faces=max_faces)
    raise ConfigError(f"unknown landmark model {name!r}", fix=f"use one of {available_landmarkers()}")


def face_size(points: np.ndarray, layout: Layout) -> float:
    """Eye-corner distance in pixels: the scale that makes mouth measures comparable across shots."""
    return float(np.linalg.norm(points[layout.eye_right] - points[layout.eye_left])) + 1e-6


def mouth_opening(points: np.ndarray, layout: Layout) -> float:
    """Inner-lip gap (mean over the pairs) divided by the eye-corner distance; 0 = closed."""
    gaps = [points[lo, 1] - points[up, 1] for up, lo in layout.inner_pairs]
    return max(0.0, float(np.mean(gaps))) / face_size(points, layout)


def mouth_features(points: np.ndarray, layout: Layout) -> np.ndarray:
    """``(3,)``: inner-lip opening, outer-lip height and mouth width, each over the eye-corner distance."""
    size = face_size(points, layout)
    outer = points[list(layout.outer_lips)]
    width = np.linalg.norm(points[layout.mouth_right] - points[layout.mouth_left]) / size
    return np.array([mouth_opening(points, layout), np.ptp(outer[:, 1]) / size, width], dtype=np.float32)
