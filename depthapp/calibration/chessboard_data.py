"""The real stereo chessboard images of Debian's ``opencv-doc`` package, for tests and benchmarks.

OpenCV ships 13 stereo pairs (``left01..14.jpg``/``right01..14.jpg``, no 10; 640x480 grey,
9x6 inner corners, 25 mm squares per the package's ``left_intrinsics.yml``) used by its
``stereo_calib`` sample. They are not redistributed here: :func:`opencv_doc_chessboards` uses
the installed package (``apt-get install opencv-doc``) or fetches it with ``apt-get download``
into a cache and extracts only these images, each checked against its SHA-256.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tarfile
from pathlib import Path
from typing import Optional

from ..errors import InputError

INSTALLED_DIR = Path("/usr/share/doc/opencv-doc/examples/data")
MEMBER_DIR = "usr/share/doc/opencv-doc/examples/data"
PATTERN_SIZE = (9, 6)
SQUARE_MM = 25.0
PAIR_NUMBERS = (1, 2, 3, 4, 5, 6, 7, 8, 9, 11, 12, 13, 14)

# SHA-256 of the images in opencv-doc 4.6.0+dfsg (Debian 12); unchanged across recent versions.
SHA256 = {
    "left01.jpg": "9621899098adffa1440c8264606bb7be535ccfd9ad126ae8e0bd9b0c5a5b8676",
    "left02.jpg": "052e700bbcc865c112958ec2ea105cb1bce4deca50ac8d6efae13adca9df7a2c",
    "left03.jpg": "c85b9426c3d8fcf161e1e727356105091009c3fd0b1b1a65bc2da91fea2724d2",
    "left04.jpg": "b490599dccfbfe5eb56d33363415b02227a9548ab8c9b8e7b05d3580e97266d9",
    "left05.jpg": "40bab8934fa76f82ec614a7fd0e6ebb4d9f74391d5e8b0c6f2f0ed6080c6c4de",
    "left06.jpg": "1cb164db61b3bd52f58a7e9340bb27c5e0278895bc80b6f292fba5cf9bccc4a1",
    "left07.jpg": "d2211fe9f971646b6ff88ed93a4f0d3f443741eb2894095cba15caade7c8c6e4",
    "left08.jpg": "f7a0737894812a28243af5b409c5689f4fadfe7610958b8ca5fc79aec2f2cd1b",
    "left09.jpg": "753939bc62d093c001d9118e989bef2b887f1b2f9ac03603df915a8b85aa81d3",
    "left11.jpg": "e736ace3d515c94c547009c3c10d818c81506ed7059cb31123749b9cc3f94ee8",
    "left12.jpg": "04bdd78b3b507fe0551aa7062a3ffd94846a147ee2bea7fb38082c720bdbe231",
    "left13.jpg": "2637fb6dd5e557f4fadb06b353a453eb0b9223f4671f6f572f815302bc4a70b3",
    "left14.jpg": "d4c032971dd7b859f9d6aed5090c9888bd8039b82e0604bee5bfe05444fce834",
    "right01.jpg": "94a160342fade4d0c4d2e94b8cb6c1e144a6e7682389d2991257e3a28625cb2d",
    "right02.jpg": "f7819b2fcc45fdeff0cefd666a1f8bd2a5828c4d34367d7b6b6691f442bf1c42",
    "right03.jpg": "43a3cea1907be641268ea18478362ab6c459424a9d8b7265eb5fb2264fcfb894",
    "right04.jpg": "d5874ff3d948dbb673beb035dd70aef5e517119ff626ecdfd612fdd6a1eec32e",
    "right05.jpg": "9382a24af5a21a9e3ec477bd4f74011e4bb10b0cdbc7e0de3ae60b75e95d650b",
    "right06.jpg": "874b60edc8a53da477c6ee393184a1aafdc83ceaedcb4d0535f7c482d1c80e76",
    "right07.jpg": "446093eead30c8cb1e51c8d01d322907760a3a57876596a81af6bf0795e9be67",
    "right08.jpg": "5f1be870c8709fd5fc4dd578103b320018aabb4e18b8e8edaba9afbdd4d0b8f4",
    "right09.jpg": "de28e9f146f4b7de78b0e39be6682997a7428f8ec5ef4efc753415d4ff8d9d76",
    "right11.jpg": "2695e8f8e94eaef0bcfe56818090dada6dc76f53e30b77b97bea3a91080949db",
    "right12.jpg": "07489b6a334fae390954bbbddedf03a0556163e5e364820838e881ebd3f33e0d",
    "right13.jpg": "a576cc5e69668d65dd926366d103c4c77377e0cd71403e4e0fc278e335ed953c",
    "right14.jpg": "e98bbe907610e9499d704bd0fe68d4adc158b19346cbc32f4cfe8a0014b1bd62",
}


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _complete(folder: Path) -> bool:
    return all((folder / name).is_file() and _sha256(folder / name) == digest
               for name, digest in SHA256.items())


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "depthapp" / "opencv-doc"


def opencv_doc_chessboards(cache_dir: Optional[str | os.PathLike] = None) -> Path:
    """The folder holding ``left01.jpg`` .. ``right14.jpg``, verified by SHA-256.

    Uses the installed ``opencv-doc`` package when present, else a cached copy, else runs
    ``apt-get download opencv-doc`` in ``cache_dir`` and extracts the 26 images.

    Raises:
        InputError: the package cannot be obtained or an image fails its checksum.
    """
    if _complete(INSTALLED_DIR):
        return INSTALLED_DIR
    cache = Path(cache_dir) if cache_dir else default_cache_dir()
    images = cache / "data"
    if _complete(images):
        return images
    if shutil.which("apt-get") is None or shutil.which("dpkg-deb") is None:
        raise InputError("the opencv-doc chessboard images need Debian's opencv-doc package: "
                         "apt-get install opencv-doc (apt-get/dpkg-deb not found here)")
    cache.mkdir(parents=True, exist_ok=True)
    for stale in cache.glob("opencv-doc_*.deb"):
        stale.unlink()
    result = subprocess.run(["apt-get", "download", "opencv-doc"], cwd=cache,
                            capture_output=True, text=True)
    debs = sorted(cache.glob("opencv-doc_*.deb"))
    if result.returncode != 0 or not debs:
        message = (result.stderr or result.stdout).strip().splitlines()[-1:] or ["no output"]
        raise InputError(f"apt-get download opencv-doc failed ({message[0]}); install it with "
                         "apt-get install opencv-doc")
    _extract_images(debs[-1], images)
    debs[-1].unlink()
    bad = [name for name, digest in SHA256.items()
           if not (images / name).is_file() or _sha256(images / name) != digest]
    if bad:
        raise InputError(f"{debs[-1].name}: chessboard images missing or with unexpected "
                         f"SHA-256: {', '.join(bad)}")
    return images


def _extract_images(deb: Path, folder: Path) -> None:
    """Stream the package's file tree through ``dpkg-deb`` and keep only the listed images."""
    folder.mkdir(parents=True, exist_ok=True)
    process = subprocess.Popen(["dpkg-deb", "--fsys-tarfile", str(deb)], stdout=subprocess.PIPE)
    try:
        with tarfile.open(fileobj=process.stdout, mode="r|") as archive:
            for member in archive:
                name = member.name.lstrip("./")
                base = name.rsplit("/", 1)[-1]
                if name.startswith(MEMBER_DIR) and base in SHA256 and member.isfile():
                    source = archive.extractfile(member)
                    tmp = folder / f".{base}.tmp"
                    tmp.write_bytes(source.read())
                    os.replace(tmp, folder / base)
    finally:
        if process.stdout:
            process.stdout.close()
        process.wait()


def chessboard_pairs(folder: str | os.PathLike) -> list[tuple[str, Path, Path]]:
    """``(name, left, right)`` paths of the 13 pairs in ``folder``."""
    folder = Path(folder)
    return [(f"{n:02d}", folder / f"left{n:02d}.jpg", folder / f"right{n:02d}.jpg")
            for n in PAIR_NUMBERS]
