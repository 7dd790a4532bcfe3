"""What the CPU offers (imgai.cpu), from /proc/cpuinfo texts of real machines, and `imgai doctor`."""

import json

import pytest

from imgai.cpu import parse_cpuinfo

SAPPHIRE_RAPIDS = ("avx avx2 fma avx512f avx512bw avx512vl avx512_vnni avx_vnni avx512_bf16 amx_tile amx_int8 "
                   "amx_bf16 sse4_2")
CASCADE_LAKE_SILVER = "avx avx2 fma avx512f avx512bw avx512vl avx512_vnni sse4_2"
HASWELL = "avx avx2 fma sse4_2"
ZEN4 = "avx avx2 fma avx512f avx512bw avx512vl avx512_vnni avx512_bf16 sse4_2"


def cpuinfo(model: str, flags: str, mhz: float = 2100.0) -> str:
    return f"processor\t: 0\nmodel name\t: {model}\ncpu MHz\t\t: {mhz}\nflags\t\t: {flags}\n\nprocessor\t: 1\n"


@pytest.mark.parametrize("model, flags, cores, simd, fma, fp32, int8, amx", [
    ("Intel(R) Xeon(R) Processor", SAPPHIRE_RAPIDS, 2, 512, 2, 268.8, 1075.2, 8601.6),
    ("Intel(R) Xeon(R) Silver 4214 CPU @ 2.20GHz", CASCADE_LAKE_SILVER, 12, 512, 1, 844.8, 3379.2, None),
    ("Intel(R) Xeon(R) CPU E5-2680 v3 @ 2.50GHz", HASWELL, 12, 256, 2, 960.0, None, None),
    ("AMD EPYC 9654 96-Core Processor", ZEN4, 4, 256, 2, 268.8, 1075.2, None),
])
def test_peaks_from_flags_model_and_clock(model, flags, cores, simd, fma, fp32, int8, amx):
    cpu = parse_cpuinfo(cpuinfo(model, flags), cores=cores)
    assert (cpu.simd_bits, cpu.fma_units) == (simd, fma)
    assert cpu.peak_fp32_gflops == pytest.approx(fp32)
    assert cpu.peak_int8_gops == (None if int8 is None else pytest.approx(int8))
    assert cpu.peak_amx_gops == (None if amx is None else pytest.approx(amx))
    assert ("no VNNI" in cpu.int8_verdict) == (int8 is None)


def test_clock_from_the_model_name_first():
    cpu = parse_cpuinfo(cpuinfo("Intel(R) Xeon(R) Gold 6230 CPU @ 2.10GHz", CASCADE_LAKE_SILVER, mhz=1000.0), cores=1)
    assert (cpu.ghz, cpu.clock_source, cpu.fma_units) == (2.1, "model name", 2)


def test_no_clock_no_peak():
    cpu = parse_cpuinfo("model name\t: something\nflags\t: sse2\n", cores=1)
    assert cpu.ghz is None and cpu.peak_fp32_gflops is None and cpu.simd_bits == 128


def test_doctor_says_whether_int8_pays_off(imgai_home, cli):
    code, out, _ = cli("doctor", "--json")
    cpu = json.loads(out)["cpu"]
    assert code == 0 and cpu["cores"] >= 1 and cpu["int8_verdict"]
    code, out, _ = cli("doctor")
    assert "int8         " in out and ("VNNI" in out) and "cpu          " in out
