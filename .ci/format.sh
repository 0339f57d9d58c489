#!/usr/bin/env bash
# Format check: fails on any difference from clang-format (C++/CUDA, .clang-format)
# or ruff (Python, pyproject.toml). Fix with:
#   clang-format -i $(git ls-files '*.h' '*.cc' '*.cu') && ruff format . && ruff check --fix .
set -euo pipefail
cd "$(dirname "$0")/.."
status=0
mapfile -t cxx < <(git ls-files '*.h' '*.cc' '*.cu')
if ! clang-format --dry-run --Werror "${cxx[@]}"; then
  echo "format: C++ sources differ from .clang-format: run clang-format -i on the files above" >&2
  status=1
fi
if ! ruff format --check .; then
  echo "format: Python files differ from ruff format: run 'ruff format .'" >&2
  status=1
fi
if ! ruff check .; then
  echo "format: ruff check found problems: run 'ruff check --fix .' and fix the rest by hand" >&2
  status=1
fi
[[ $status -eq 0 ]] && echo "format: clang-format and ruff: no differences"
exit $status
