"""A benchmark result as a text table."""

from __future__ import annotations

from typing import Any

__all__ = ["format_table"]


def format_table(result: dict[str, Any]) -> str:
    if result.get("mode") == "host-only":
        return _format_host_only(result)
    lines = [
        f"{result['device']['name']} ({result['device']['type']}), copy bandwidth "
        f"{result['copy_bandwidth_gb_s']:.0f} GB/s, torch {result['versions']['torch']}"
    ]
    for case, entry in result["cases"].items():
        lines.append(
            f"\n{case}: {entry['n_params']:,} parameters in {entry['n_tensors']} tensors, "
            f"floor {entry['floor_ms']:.3f} ms"
        )
        for name, r in entry["results"].items():
            if "median_ms" in r:
                lines.append(
                    f"  {name:22s} {r['median_ms']:10.3f} ms  (p10 {r['p10_ms']:.3f}, p90 {r['p90_ms']:.3f},"
                    f" host {r['host_median_ms']:.3f})  {r['median_ms'] / entry['floor_ms']:7.2f} x floor"
                )
            else:
                lines.append(f"  {name:22s} skipped: {r['error']}")
        for name, ratio in entry["ratios"].items():
            lines.append(
                f"  ratio {name}: {ratio:.3f} (of medians), {entry['paired_ratios'][name]:.3f} "
                "(median of per-round ratios)"
            )
    return "\n".join(lines)


def _format_host_only(result: dict[str, Any]) -> str:
    lines = [
        f"Host time of a fused step (kernel launch not made) on {result['device']['name']}, "
        f"torch {result['versions']['torch']}, {result['settings']['repeats']} rounds"
    ]
    for case, entry in result["cases"].items():
        lines.append(f"\n{case}: {entry['n_tensors']} tensors")
        for name, r in entry["results"].items():
            if "median_ms" in r:
                lines.append(
                    f"  {name:22s} {r['host_median_ms']:9.4f} ms  (p10 {r['p10_ms']:.4f}, p90 {r['p90_ms']:.4f})"
                )
            else:
                lines.append(f"  {name:22s} skipped: {r['error']}")
    return "\n".join(lines)
