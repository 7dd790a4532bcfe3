"""What this CPU offers for inference, read from what the machine reports.

The flags and model name come from /proc/cpuinfo, the clock from the model name ("@ 2.10GHz"),
cpufreq, or /proc/cpuinfo's "cpu MHz", the cores from the CPUs this process may run on. From them:
the SIMD width, the FMA units per core, whether INT8 has a one-instruction dot product (VNNI:
`vpdpbusd`, 4 int8 multiply-adds per 32-bit lane) or tile units (AMX), and the theoretical peaks

    FP32 GFLOP/s = cores x GHz x FMA units x (SIMD bits / 32) x 2
    INT8 GOP/s   = cores x GHz x FMA units x (SIMD bits / 8) x 2          (with VNNI only)
    AMX  GOP/s   = cores x GHz x 1024 x 2                                 (with AMX-INT8)
"""

from __future__ import annotations

import os
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

CPUINFO = Path("/proc/cpuinfo")
VNNI_FLAGS = ("avx512_vnni", "avx512vnni", "avx_vnni")
AMX_INT8_MACS_PER_CYCLE = 1024      # one AMX unit: a 16x64 by 64x16 int8 tile product per 16 cycles


@dataclass
class CpuInfo:
    model: str
    cores: int
    ghz: float | None
    clock_source: str
    flags: frozenset = field(default_factory=frozenset)

    @property
    def simd_bits(self) -> int:
        if "avx512f" in self.flags and not self._double_pumped_avx512:
            return 512
        if "avx2" in self.flags or "avx" in self.flags:
            return 256
        return 128 if "sse2" in self.flags else 64

    @property
    def _double_pumped_avx512(self) -> bool:
        """AMD Zen 4 (EPYC 9xx4, Ryzen 7000/8000) runs AVX-512 on 256-bit units."""
        return bool(re.search(r"AMD (EPYC 9\d\d4|Ryzen \d+ [78]\d\d\d)", self.model))

    @property
    def fma_units(self) -> int:
        """FMA units per core: 2 on server cores and AVX2 desktops; 1 where the model says so
        (Xeon Bronze/Silver and Gold 5xxx of the Skylake/Cascade Lake generations, client AVX-512)."""
        if "fma" not in self.flags:
            return 1
        if self.simd_bits == 512:
            one_unit = re.search(r"Xeon\(R\) (Bronze|Silver|Gold 5\d{3})|Core\(TM\)", self.model)
            if one_unit and "amx_tile" not in self.flags:      # every AMX generation has two
                return 1
        return 2

    @property
    def vnni(self) -> bool:
        return any(f in self.flags for f in VNNI_FLAGS)

    @property
    def amx_int8(self) -> bool:
        return "amx_int8" in self.flags

    @property
    def peak_fp32_gflops(self) -> float | None:
        if not self.ghz:
            return None
        flops_per_lane = 2 if "fma" in self.flags else 1
        return self.cores * self.ghz * self.fma_units * (self.simd_bits // 32) * flops_per_lane

    @property
    def peak_int8_gops(self) -> float | None:
        """The VNNI peak; None without VNNI (INT8 then needs a 3-instruction sequence)."""
        if not self.ghz or not self.vnni:
            return None
        bits = 512 if ("avx512_vnni" in self.flags or "avx512vnni" in self.flags) else 256
        return self.cores * self.ghz * self.fma_units * (min(bits, self.simd_bits) // 8) * 2

    @property
    def peak_amx_gops(self) -> float | None:
        if not self.ghz or not self.amx_int8:
            return None
        return self.cores * self.ghz * AMX_INT8_MACS_PER_CYCLE * 2

    @property
    def int8_verdict(self) -> str:
        if self.amx_int8:
            return "AMX-INT8 and VNNI: INT8 models pay off here"
        if self.vnni:
            return "VNNI: INT8 models pay off here"
        return "no VNNI: INT8 models may be no faster than FP32 on this CPU"

    def simd_name(self) -> str:
        return {512: "AVX-512", 256: "AVX2" if "avx2" in self.flags else "AVX", 128: "SSE"}.get(self.simd_bits, "none")

    def to_dict(self) -> dict:
        out = asdict(self)
        out["flags"] = sorted(f for f in self.flags if f.startswith(("avx", "amx", "fma", "sse4")))
        for key in ("simd_bits", "fma_units", "vnni", "amx_int8", "peak_fp32_gflops", "peak_int8_gops",
                    "peak_amx_gops", "int8_verdict"):
            out[key] = getattr(self, key)
        return out


def _usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _clock(model: str, mhz: str | None) -> tuple[float | None, str]:
    m = re.search(r"@\s*([\d.]+)\s*GHz", model)
    if m:
        return float(m[1]), "model name"
    try:
        khz = int(Path("/sys/devices/system/cpu/cpu0/cpufreq/base_frequency").read_text())
        return khz / 1e6, "cpufreq base_frequency"
    except (OSError, ValueError):
        pass
    if mhz:
        return float(mhz) / 1000, "/proc/cpuinfo cpu MHz"
    return None, "unknown"


def parse_cpuinfo(text: str, *, cores: int) -> CpuInfo:
    fields: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() not in fields:      # the first processor's entry
            fields[key.strip()] = value.strip()
    model = fields.get("model name", "unknown CPU")
    ghz, source = _clock(model, fields.get("cpu MHz"))
    return CpuInfo(model=model, cores=cores, ghz=ghz, clock_source=source,
                   flags=frozenset(fields.get("flags", "").split()))


def cpu_info() -> CpuInfo:
    """This machine's CPU (an empty flag set where /proc/cpuinfo is missing, e.g. macOS)."""
    try:
        text = CPUINFO.read_text()
    except OSError:
        import platform

        return CpuInfo(model=platform.processor() or platform.machine(), cores=_usable_cores(), ghz=None,
                       clock_source="unknown")
    return parse_cpuinfo(text, cores=_usable_cores())
