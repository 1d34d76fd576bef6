"""cvaeq.allocator: freed image-sized buffers stay in the process (glibc)."""

import os
import platform
import subprocess
import sys

import pytest

from cvaeq.allocator import keep_freed_memory

GLIBC = platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"


@pytest.mark.skipif(not GLIBC, reason="mallopt is glibc's")
def test_the_thresholds_are_set_once_per_process():
    assert keep_freed_memory() is True
    assert keep_freed_memory() is True  # idempotent: the first answer, nothing set again


def test_it_can_be_turned_off():
    code = "from cvaeq.allocator import keep_freed_memory; print(keep_freed_memory())"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "CVAEQ_KEEP_FREED_MEMORY": "0"})
    assert out.stdout.strip() == "False"
