"""The C device SDK (device_sdk/c): configure, build and run its cmocka tests under ctest, with gcc and clang
(-Wall -Wextra -Werror -pedantic) and with AddressSanitizer + UndefinedBehaviorSanitizer.

The C tests read every case of device_sdk/test-vectors/ (tables generated at build time by
device_sdk/c/tests/gen_vectors.py with this interpreter, so the reference encoder is the service's own) and fail
when a vector file holds a case they did not handle. A missing compiler or package is a failure, not a skip:
`make test` installs them (Makefile, C_SDK_PACKAGES).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SDK = REPO / "device_sdk" / "c"

CONFIGS = {
    "gcc": ["-DCMAKE_C_COMPILER=gcc"],
    "clang": ["-DCMAKE_C_COMPILER=clang"],
    "gcc-asan-ubsan": ["-DCMAKE_C_COMPILER=gcc", "-DTF_SANITIZE=ON"],
    "clang-asan-ubsan": ["-DCMAKE_C_COMPILER=clang", "-DTF_SANITIZE=ON"],
}
C_TESTS = {"test_wire_vectors", "test_ota", "test_ring", "test_fring", "test_tflm", "test_json"}
VECTORS = REPO / "device_sdk" / "test-vectors"
#: seconds each libFuzzer target runs (bounded, so CI stays predictable)
FUZZ_SECONDS = int(os.environ.get("TF_FUZZ_SECONDS", "30"))


def _need(tool: str, package: str) -> str:
    path = shutil.which(tool)
    if path is None:
        pytest.fail(f"{tool} is missing: install the Debian package {package} (make c-sdk-deps)")
    return path


def _run(cmd: list[str], cwd: Path, timeout: int = 600) -> str:
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False)
    out = proc.stdout + proc.stderr
    if proc.returncode != 0:
        pytest.fail(f"{' '.join(cmd)} failed ({proc.returncode}):\n{out[-6000:]}")
    return out


@pytest.mark.parametrize("config", sorted(CONFIGS))
def test_c_sdk_builds_clean_and_passes_ctest(config: str, tmp_path: Path) -> None:
    cmake = _need("cmake", "cmake")
    ctest = _need("ctest", "cmake")
    compiler = "clang" if config.startswith("clang") else "gcc"
    _need(compiler, compiler)
    build = tmp_path / "build"
    _run(
        [
            cmake,
            "-S",
            str(SDK),
            "-B",
            str(build),
            f"-DTF_PYTHON={sys.executable}",
            "-DCMAKE_BUILD_TYPE=Debug",
            *CONFIGS[config],
        ],
        REPO,
    )
    _run([cmake, "--build", str(build), "-j", "2"], REPO)
    out = _run([ctest, "--test-dir", str(build), "--output-on-failure", "-V"], REPO)
    assert "100% tests passed" in out
    ran = set(re.findall(r"Test +#\d+: (\w+) \.+ +Passed", out))
    assert ran == C_TESTS, out[-3000:]
    # every vector file was read whole: the wire and manifest tests count their cases against the files
    assert "[  PASSED  ] 5 test(s)." in out
    assert "[  PASSED  ] 7 test(s)." in out


def test_c_sdk_on_cortex_m4_under_qemu(tmp_path: Path) -> None:
    """The codec vectors, the RAM and flash rings and the TFLM helpers cross-compiled for Cortex-M4 (hard float) and run
    bare-metal on QEMU's mps2-an386: endianness, alignment, float16 and soft double on the real instruction set."""
    cmake = _need("cmake", "cmake")
    ctest = _need("ctest", "cmake")
    _need("arm-none-eabi-gcc", "gcc-arm-none-eabi (and libnewlib-arm-none-eabi)")
    _need("qemu-system-arm", "qemu-system-arm")
    build = tmp_path / "m4"
    _run(
        [cmake, "-S", str(SDK / "examples" / "cortex_m4"), "-B", str(build),
         f"-DCMAKE_TOOLCHAIN_FILE={SDK / 'cmake' / 'arm-none-eabi.cmake'}", f"-DTF_PYTHON={sys.executable}"],
        REPO,
    )  # fmt: skip
    _run([cmake, "--build", str(build), "-j", "2"], REPO)
    out = _run([ctest, "--test-dir", str(build), "--output-on-failure", "-V"], REPO)
    ran = set(re.findall(r"Test +#\d+: (\w+) \.+ +Passed", out))
    assert ran == {
        "firmware_qemu",
        "test_wire_vectors_qemu",
        "test_ring_qemu",
        "test_fring_qemu",
        "test_tflm_qemu",
        "test_json_qemu",
    }, out[-3000:]
    assert "0 of 5 tests failed" in out  # the five vector groups ran on the target
    assert "tf/v1/press-007/evt (26 bytes): a7000102050303" in out


@pytest.fixture(scope="module")
def fuzz_build(tmp_path_factory: pytest.TempPathFactory) -> Path:
    cmake = _need("cmake", "cmake")
    _need("clang", "clang (and libclang-rt-dev for libFuzzer)")
    build = tmp_path_factory.mktemp("c-sdk-fuzz")
    _run(
        [cmake, "-S", str(SDK), "-B", str(build), "-DCMAKE_C_COMPILER=clang", "-DTF_FUZZ=ON", "-DTF_POSIX_PORT=OFF",
         f"-DTF_PYTHON={sys.executable}"],
        REPO,
    )  # fmt: skip
    _run([cmake, "--build", str(build), "-j", "2", "--target", "fuzz_decoders", "fuzz_manifest"], REPO)
    return build / "tests"


def _seed_corpus(target: str, corpus: Path) -> int:
    corpus.mkdir()
    n = 0
    if target == "fuzz_manifest":
        cases = [(c["name"], c["hex"]) for c in json.loads((VECTORS / "manifests.json").read_text())["cases"]]
    else:
        cases = []
        for kind in ("events", "state", "telemetry", "ota_status"):
            doc = json.loads((VECTORS / f"{kind}.json").read_text())
            cases += [(f"{kind}-{c['name']}", c["hex"]) for c in doc["valid"] + doc["invalid"]]
    for name, hexdata in cases:
        (corpus / name).write_bytes(bytes.fromhex(hexdata))
        n += 1
    return n


@pytest.mark.parametrize("target", ["fuzz_decoders", "fuzz_manifest"])
def test_c_sdk_libfuzzer_finds_nothing(fuzz_build: Path, tmp_path: Path, target: str) -> None:
    """libFuzzer (with ASan + UBSan) over the decoders and the manifest verifier, seeded with every vector."""
    corpus = tmp_path / "corpus"
    seeds = _seed_corpus(target, corpus)
    assert seeds > 50
    proc = subprocess.run(
        [str(fuzz_build / target), f"-max_total_time={FUZZ_SECONDS}", "-max_len=2048", "-timeout=10", str(corpus)],
        capture_output=True, text=True, timeout=FUZZ_SECONDS + 120, check=False,
    )  # fmt: skip
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-6000:]
    assert re.search(r"Done \d+ runs in", out), out[-3000:]
