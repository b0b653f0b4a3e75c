"""Run exported zoo models with onnxruntime and numpy only: no torch, no model code.

    from zoo.export.runtime import Generator, Encoder, Decoder, Scorer, save_grid

    gen = Generator("runs/vae/generator.onnx")
    images = gen.sample(64, seed=0)              # float32 [64, *data_shape]
    save_grid("samples.png", images)

    z = Encoder("runs/vae/encoder.onnx").encode(images)        # the code: z, or a VAE's mean mu
    x_hat = Decoder("runs/vae/decoder.onnx").decode(z)

    scorer = Scorer("runs/vae/scorer.onnx")                     # a run with an anomaly threshold
    flags = scorer.score_images(["a.png", "b.png"])["anomalous"]

Each class opens its file once (one onnxruntime session, reused for every call), checks that the
file is a zoo artifact of the right part, and reads the shapes and the latent prior from its
``zoo.*`` metadata. Inputs must be float32 arrays of shape ``[batch, *shape]``; anything else is a
``zoo.ZooError`` saying what was expected.
"""

import math
from pathlib import Path

import numpy as np
import onnxruntime as ort

from zoo.core.errors import ZooError, first_line
from zoo.core.image_grid import grid, save_grid  # noqa: F401 (re-exported for apps)
from zoo.export import metadata
from zoo.export.metadata import prior_sample  # noqa: F401 (re-exported: apps sample a prior from here)

MAX_SAMPLES = 100_000  # one call's worth; 100k MNIST images are 300 MB of float32
CHUNK = 1024  # samples per onnxruntime call, so memory stays flat for large n


def read_metadata(path) -> dict:
    """The ``zoo.*`` metadata of an ONNX file, JSON values parsed; ZooError if it is not a zoo file."""
    return _open_session(path, None)[1]


def _open_session(path, intra_op_num_threads, inter_op_num_threads=None, memory_arena=True):
    path = Path(path)
    if not path.is_file():
        raise ZooError(f"{path}: no such file")
    options = ort.SessionOptions()
    options.log_severity_level = 3  # onnxruntime's warnings are for developers, not app users
    for key, value in (("intra_op_num_threads", intra_op_num_threads), ("inter_op_num_threads", inter_op_num_threads)):
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ZooError(f"{key} must be a non-negative int (0: onnxruntime decides), got {value!r}")
        setattr(options, key, value)
    options.enable_cpu_mem_arena = memory_arena
    try:
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as exc:
        raise ZooError(f"{path}: not a valid ONNX model ({first_line(exc, 160)})") from None
    meta = metadata.parse(session.get_modelmeta().custom_metadata_map, path)
    _check_against_graph(path, session, meta)
    return session, meta


# What each part's graph takes and gives, in terms of the metadata's shapes: (input, first output).
PART_SHAPES = {
    "encoder": ("zoo.data_shape", "zoo.latent_shape"),
    "decoder": ("zoo.latent_shape", "zoo.data_shape"),
    "generator": ("latent_dim", "zoo.data_shape"),
    "scorer": ("zoo.data_shape", "per_row"),
}


def _check_against_graph(path, session, meta: dict) -> None:
    """Refuse a file whose zoo.* shapes (well-formed: ``metadata.parse`` checked them) disagree with
    the shapes its graph declares, before any array is sized from the metadata (an edited
    zoo.latent_shape must not allocate terabytes)."""
    if meta["zoo.part"] not in PART_SHAPES:
        return  # load() names the unknown part
    inputs, outputs = session.get_inputs(), session.get_outputs()
    if len(inputs) != 1 or not outputs:
        raise ZooError(
            f"{path}: the graph has {len(inputs)} inputs and {len(outputs)} outputs; "
            "a zoo artifact has one input and at least one output"
        )
    meta_shapes = {**meta, "latent_dim": [noise_dim(meta)], "per_row": []}
    for tensor, key in zip((inputs[0], outputs[0]), PART_SHAPES[meta["zoo.part"]]):
        want = meta_shapes[key]
        declared = list(tensor.shape[1:])
        # A dimension the graph leaves symbolic (a string or None) cannot contradict the metadata.
        if len(declared) != len(want) or any(isinstance(d, int) and d != w for d, w in zip(declared, want)):
            what = key if key != "latent_dim" else "zoo.latent_shape"
            raise ZooError(
                f"{path}: its {what} metadata {meta[what]} does not match the graph's "
                f"{tensor.name} of shape [batch, {', '.join(map(str, declared))}]; "
                "the file was altered: export it again with `zoo export RUN`"
            )


def noise_dim(meta: dict) -> int:
    """The width of a generator's N(0, I) input: ``zoo.prior``'s ``noise_dim`` where the model's
    sampler takes more noise than it has latent dimensions (a mixture's component, a code grid's
    draws), else the latent size."""
    prior = meta["zoo.prior"] if isinstance(meta["zoo.prior"], dict) else {}
    width = prior.get("noise_dim", math.prod(meta["zoo.latent_shape"]))
    return width if isinstance(width, int) and not isinstance(width, bool) and width > 0 else 0


def _check_count(n) -> int:
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or not 1 <= n <= MAX_SAMPLES:
        raise ZooError(f"the number of samples must be an integer from 1 to {MAX_SAMPLES}, got {n!r}")
    return int(n)


def _rng(seed) -> np.random.Generator:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ZooError(f"seed must be a non-negative integer, got {seed!r}")
    return np.random.default_rng(int(seed))


def standard_normal(n: int, dim: int, seed: int = 0) -> np.ndarray:
    """The eps a generator takes: float32 [n, dim] from N(0, I), a pure function of the seed."""
    return _rng(seed).standard_normal((_check_count(n), dim), dtype=np.float32)


class Artifact:
    """One exported file: an onnxruntime session opened once, plus what its metadata says."""

    part = ""  # "encoder", "decoder", "generator" or "scorer" in the subclasses

    def __init__(self, path, intra_op_num_threads: int | None = None):
        """``intra_op_num_threads``: onnxruntime's thread pool size (None or 0: its default)."""
        session, meta = _open_session(path, intra_op_num_threads)
        self._setup(Path(path), session, meta)

    def _setup(self, path: Path, session, meta: dict) -> None:
        self.path = path
        self.session = session
        if meta["zoo.part"] != self.part:
            article = "an" if self.part[0] in "aeiou" else "a"
            raise ZooError(
                f"{self.path} is a zoo {meta['zoo.part']}, not {article} {self.part}; "
                f"open it with {meta['zoo.part'].capitalize()}(...)"
            )
        self.metadata = meta
        self.model = meta["zoo.model"]
        self.data_shape = tuple(meta["zoo.data_shape"])
        self.latent_shape = tuple(meta["zoo.latent_shape"])
        self.latent_dim = math.prod(self.latent_shape)
        self.prior = meta["zoo.prior"]
        self.config = meta["zoo.config"]
        self.dataset = meta["zoo.dataset"]
        (self.input,) = self.session.get_inputs()
        self.output_names = [o.name for o in self.session.get_outputs()]

    def __repr__(self):
        return f"{type(self).__name__}({str(self.path)!r}, model={self.model!r})"

    def _check(self, array, shape: tuple) -> np.ndarray:
        """A float32 [batch >= 1, *shape] array, or one ZooError line saying what was expected."""
        name = self.input.name
        wanted = f"[batch, {', '.join(map(str, shape))}]"
        if not isinstance(array, np.ndarray):
            raise ZooError(f"{name} must be a numpy array of shape {wanted}, got {type(array).__name__}")
        if array.dtype != np.float32:
            raise ZooError(f"{name} must be float32, got {array.dtype} (convert with .astype(np.float32))")
        if array.ndim != len(shape) + 1 or tuple(array.shape[1:]) != shape or array.shape[0] < 1:
            raise ZooError(
                f"{name} must have shape {wanted} for this {self.model} {self.part}, got {list(array.shape)}"
            )
        return np.ascontiguousarray(array)

    def _run(self, array) -> list:
        # Chunks keep onnxruntime's working memory bounded for large batches.
        if len(array) <= CHUNK:
            return self.session.run(self.output_names, {self.input.name: array})
        chunks = [
            self.session.run(self.output_names, {self.input.name: array[i : i + CHUNK]})
            for i in range(0, len(array), CHUNK)
        ]
        return [np.concatenate(outs) for outs in zip(*chunks)]


class TakesData(Artifact):
    """A part whose input is the data itself (the encoder, the scorer): arrays, or image files and
    PIL images prepared as the training data was."""

    def run(self, x: np.ndarray) -> dict:
        """Every named output: ``{"z": ...}`` (a VAE's ``{"mu": ..., "logvar": ...}``), or the
        scorer's ``{"score": ..., "anomalous": ...}``."""
        return dict(zip(self.output_names, self._run(self._check(x, self.data_shape))))

    def prepare_images(self, images) -> np.ndarray:
        """Image files (paths) or PIL images -> float32 [batch, *data_shape], prepared as the model's
        training data was (the file's ``zoo.preprocess``: channels, centre crop, antialiased resize,
        pixels / 255)."""
        from zoo.data.image_files import BadImage, decode_file, prepare

        settings = self.metadata.get(metadata.PREPROCESS)
        if not settings:
            raise ZooError(
                f"{self.path} has no zoo.preprocess metadata (not a model of images, or exported "
                "by an older zoo); prepare the arrays yourself and call encode"
            )
        size, channels, crop = settings["size"], settings["channels"], settings.get("crop")
        prepared = []
        for image in images:
            try:
                if isinstance(image, (str, Path)):
                    prepared.append(decode_file(image, size, channels, crop))
                else:
                    prepared.append(prepare(image, size, channels, crop))
            except BadImage as exc:
                raise ZooError(f"{image}: not a usable image ({exc})") from None
            except OSError as exc:
                raise ZooError(f"{image}: cannot read ({exc.strerror or exc})") from None
        if not prepared:
            raise ZooError("no images given")
        return np.stack(prepared).astype(np.float32) / 255.0


class Encoder(TakesData):
    """encoder.onnx: data [batch, *data_shape] -> the code."""

    part = "encoder"

    def encode(self, x: np.ndarray) -> np.ndarray:
        """The code [batch, *latent_shape]: the first output (z, or a VAE's posterior mean mu),
        the input ``Decoder.decode`` takes."""
        return self._run(self._check(x, self.data_shape))[0]

    def encode_images(self, images) -> np.ndarray:
        """The codes of image files or PIL images (``prepare_images``, then ``encode``)."""
        return self.encode(self.prepare_images(images))


class Scorer(TakesData):
    """scorer.onnx: data [batch, *data_shape] -> ``score`` [batch] (the model's anomaly score: higher
    is less like the training data) and ``anomalous`` [batch] (bool: score above ``threshold``).
    ``definition`` says what the score is; ``fpr`` is the false-positive rate the threshold was set
    at on held-out normal training samples."""

    part = "scorer"

    def _setup(self, path, session, meta) -> None:
        super()._setup(path, session, meta)
        score = meta.get(metadata.SCORE) or {}
        if not isinstance(score.get("threshold"), (int, float)):
            raise ZooError(
                f"{path}: no usable zoo.score metadata (the threshold); export it again with `zoo export RUN`"
            )
        self.threshold = float(score["threshold"])
        self.definition = str(score.get("definition", ""))
        self.fpr = score.get("fpr")

    def score(self, x: np.ndarray) -> np.ndarray:
        """float32 [batch]: the anomaly score of each row."""
        return self.run(x)["score"]

    def score_images(self, images) -> dict:
        """``{"score": ..., "anomalous": ...}`` of image files or PIL images, prepared as the training
        data was."""
        return self.run(self.prepare_images(images))


class Decoder(Artifact):
    """decoder.onnx: codes [batch, *latent_shape] -> data [batch, *data_shape]."""

    part = "decoder"

    def decode(self, z: np.ndarray) -> np.ndarray:
        return self._run(self._check(z, self.latent_shape))[0]

    def sample(self, n: int, seed: int = 0) -> np.ndarray:
        """n samples with z drawn from the prior in the file's metadata; same seed, same samples
        (and the same as ``Generator.sample`` of the same export, up to float rounding)."""
        eps = standard_normal(n, self.latent_dim, seed)
        z = prior_sample(self.prior, eps).astype(np.float32).reshape(-1, *self.latent_shape)
        return self.decode(z)


class Generator(Artifact):
    """generator.onnx: eps ~ N(0, I) [batch, noise_dim] -> samples [batch, *data_shape]; the prior
    is inside the graph."""

    part = "generator"

    @property
    def noise_dim(self) -> int:
        """Width of the noise ``generate`` takes (the latent size unless the metadata says more)."""
        return noise_dim(self.metadata)

    def generate(self, eps: np.ndarray) -> np.ndarray:
        return self._run(self._check(eps, (self.noise_dim,)))[0]

    def sample(self, n: int, seed: int = 0) -> np.ndarray:
        """n samples; same seed, same samples."""
        return self.generate(standard_normal(n, self.noise_dim, seed))


PART_CLASSES = {cls.part: cls for cls in (Encoder, Decoder, Generator, Scorer)}


def load(
    path, intra_op_num_threads: int | None = None, inter_op_num_threads: int | None = None, memory_arena: bool = True
) -> Artifact:
    """Open any zoo artifact as the class its ``zoo.part`` metadata names (thread counts: None or 0 for
    onnxruntime's default; the inter-op pool only works when a graph runs in parallel mode).
    ``memory_arena=False``: onnxruntime returns each call's memory instead of keeping the largest
    call's for ever (what a server wants after one huge request)."""
    session, meta = _open_session(path, intra_op_num_threads, inter_op_num_threads, memory_arena)
    part = meta["zoo.part"]
    if part not in PART_CLASSES:
        raise ZooError(f"{path}: unknown zoo.part {part!r}; expected one of {', '.join(PART_CLASSES)}")
    artifact = PART_CLASSES[part].__new__(PART_CLASSES[part])
    artifact._setup(Path(path), session, meta)  # the session just opened, not a second one
    return artifact
