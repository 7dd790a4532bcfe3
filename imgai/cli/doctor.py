"""`imgai doctor [--json]`: versions, execution providers, data folder, free disk, Hub reachability."""

from __future__ import annotations

from .output import JSON, print_json


def register(sub) -> None:
    p = sub.add_parser("doctor", help="check what this installation can do (paste it into bug reports)",
                       parents=[JSON])
    p.set_defaults(func=cmd_doctor)


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
    print(f"data folder  {report.data_folder} ({report.free_disk_gb} GB free)")
    print(f"hub          {report.hub}")
    return 0
