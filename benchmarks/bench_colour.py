"""The colour task's generation: 10,000 32×32 RGB images (``colour-digits``, ``colour-animals``).

Side by side: the library, which draws every random choice first and then composes the
images in chunks of ``_CHUNK`` (1,000), and the same composition in one chunk of 10,000
(every intermediate tensor 10× larger, out of the cache). Both give the same images. The
glyphs and photographs are prepared once, before timing (about a second, cold).
"""

from __future__ import annotations

from unittest import mock

import torch

from benchmarks.bench_stats import _best
from transferability.data import colour

N_PER_CLASS = 1000


def main() -> None:
    families = {"colour-digits": (colour._digit_glyphs(), colour._DIGITS),
                "colour-animals": (colour._animal_glyphs(), colour._ANIMALS)}
    colour._backgrounds()
    for name, (glyphs, style) in families.items():
        def run(glyphs=glyphs, style=style):
            return colour._compose(glyphs, N_PER_CLASS, 0, style)[0]
        chunked = run()
        with mock.patch.object(colour, "_CHUNK", 10 * N_PER_CLASS):
            whole = run()
            t_whole = _best(run)
        t_chunked = _best(run)
        gap = (chunked - whole).abs().max().item()
        print(f"{name}: {10 * N_PER_CLASS:,} images in {t_chunked:.2f} s (chunks of "
              f"{colour._CHUNK}) vs {t_whole:.2f} s (one chunk): ×{t_whole / t_chunked:.2f} "
              f"(max |Δ| {gap:.1e}; {torch.get_num_threads()} threads)")


if __name__ == "__main__":
    main()
