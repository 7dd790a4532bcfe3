"""`imgai doctor [--json]`: versions, execution providers, data folder, free disk, Hub reachability."""

from __future__ import annotations

from .output import JSON, print_json


def register(sub) -> None:
    p = sub.add_parser("doctor", help="check what this installation can do (paste it into bug reports)",
                       parents=[JSON])
    p.set_defaults(func=cmd_doctor)


def cpu_line(cpu: dict) -> str:
    simd = {512: "AVX-512", 256: "AVX2", 128: "SSE"}.get(cpu["simd_bits"], "no SIMD")
    clock = f"{cpu['ghz']:.2f} GHz ({cpu['clock_source']})" if cpu["ghz"] else "clock unknown"
    peaks = [f"FP32 {cpu['peak_fp32_gflops']:.0f} GFLOP/s" if cpu["peak_fp32_gflops"] else None,
             f"INT8 VNNI {cpu['peak_int8_gops']:.0f} GOP/s" if cpu["peak_int8_gops"] else None,
             f"AMX {cpu['peak_amx_gops']:.0f} GOP/s" if cpu["peak_amx_gops"] else None]
    return (f"{cpu['model']}, {cpu['cores']} cores, {clock}, {simd} x{cpu['fma_units']} FMA; peaks "
            + (", ".join(p for p in peaks if p) or "unknown"))


def cmd_doctor(args) -> int:
    from ..doctor import check_environment

    report = check_environment(check_hub=True)
    if args.json:
        print_json(report.to_dict())
        return 0
    print(f"python       {report.python} on {report.platform}")
    for name, version in report.versions.items():
        print(f"  {name:16} {version or 'not installed'}")
    print(f"tagging      {'ready' if report.can_tag else 'missing ' + ', '.join(report.missing_for_tag)}")
    print(f"conversion   {'ready' if report.can_convert else report.convert_hint}")
    print(f"onnxruntime  {', '.join(report.onnxruntime_providers) or '-'}")
    print(f"cpu          {cpu_line(report.cpu)}")
    print(f"int8         {report.cpu['int8_verdict']}")
    print(f"data folder  {report.data_folder} ({report.free_disk_gb} GB free)")
    print(f"hub          {report.hub}")
    return 0
