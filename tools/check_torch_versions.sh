#!/usr/bin/env bash
# The package's optimizer tests on other torch releases, each in a fresh environment from the package registry:
# by default the oldest torch the package supports (the floor in pyproject.toml) and one release between it and the
# pinned one. Each environment gets that torch, the package installed from this checkout (not editable, so the
# tests import what pip installed) and pytest; the tests run from outside the checkout. A private torch name that
# moves in a torch release, or a numeric change in torch.optim.RAdam, fails here.
#
# Usage: tools/check_torch_versions.sh [TORCH_VERSION ...]      (default: 2.8.0 2.9.1; PYTHON=python3.11)
# The releases are checked side by side (one core each). Each environment takes about 5 GB of disk (torch from PyPI
# is the CUDA build) and is removed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
PYTHON=${PYTHON:-python3.11}
versions=("$@")
[ ${#versions[@]} -gt 0 ] || versions=(2.8.0 2.9.1)

# The tests of the optimizers and their step (everything that touches torch.optim), not the book's or the experiments'
tests=(test_optimizer_parity.py test_optimizer_api.py test_optimizer_variants.py test_functional.py test_variants.py
       test_counted_state.py test_schedules.py test_fused_reference.py test_fused.py test_torch_compat.py)

floor=$("$PYTHON" -c 'import re, tomllib
deps = tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"]
print(next(re.fullmatch(r"torch>=([\d.]+)", d).group(1) for d in deps if d.startswith("torch")))')
case " ${versions[*]} " in
    *" $floor."*) ;;
    *) echo "the versions checked (${versions[*]}) do not include pyproject.toml's floor, torch $floor" >&2; exit 2 ;;
esac

work=$(mktemp -d "${TMPDIR:-/tmp}/radam-torch-versions.XXXXXX")
trap 'rm -rf "$work"' EXIT
# pip builds a package inside its source tree: give it a copy of what the package is made of, not the checkout
mkdir "$work/source"
tar -c --exclude=__pycache__ pyproject.toml README.md radam | tar -x -C "$work/source"

# One release: a fresh environment, the install, the tests. Writes its log and one row of the results table.
check() {
    local version=$1 venv="$work/torch-$version" start=$SECONDS installed install_s outcome summary
    mkdir "$work/run-$version"
    "$PYTHON" -m venv "$venv"
    if ! "$venv/bin/pip" install --quiet --disable-pip-version-check "torch==$version" "$work/source" pytest \
            hypothesis > "$work/pip-$version.log" 2>&1; then
        tail -20 "$work/pip-$version.log"
        echo "| $version | | install failed | |" > "$work/row-$version"
        return 1
    fi
    install_s=$((SECONDS - start))
    installed=$("$venv/bin/python" -c 'import importlib.metadata as m, torch
triton = [d.version for d in m.distributions(name="triton")]
print(torch.__version__, "|", triton[0] if triton else "none")')
    start=$SECONDS
    if (cd "$work/run-$version" && OMP_NUM_THREADS=1 "$venv/bin/python" -m pytest -q -p no:cacheprovider \
            --rootdir "$root" "${tests[@]/#/$root/tests/}"); then
        outcome=passed
    else
        outcome=FAILED
    fi
    echo "| $installed | $outcome | ${install_s} s + $((SECONDS - start)) s |" > "$work/row-$version"
    [ "$outcome" = passed ]
}

pids=()
for version in "${versions[@]}"; do
    check "$version" > "$work/log-$version" 2>&1 &
    pids+=($!)
done
status=0
for i in "${!versions[@]}"; do
    lines=3
    wait "${pids[$i]}" || { status=1; lines=80; }
    echo "== torch ${versions[$i]}: a fresh environment, the package, the optimizer tests"
    tail -"$lines" "$work/log-${versions[$i]}"
done

echo
echo "| torch | triton | optimizer tests | install + tests |"
echo "|---|---|---|---|"
for version in "${versions[@]}"; do
    cat "$work/row-$version" 2>/dev/null || echo "| $version | | did not finish | |"
done
exit $status
