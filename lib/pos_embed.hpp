// Position embeddings at another resolution: the grid part of a stored table resampled exactly as the source
// library does it, so a model runs at any input size.
#pragma once

#include <vector>

#include "config.hpp"

namespace vit {

// `grid` holds g0 x g0 rows of D floats (row-major over (y, x), as the checkpoint stores the patch positions);
// returns g1 x g1 rows: torch.nn.functional.interpolate(grid as [1, D, g0, g0], size=(g1, g1), mode="bicubic",
// align_corners=False, antialias=(method == BicubicAntialias)) — transformers' interpolate_pos_encoding
// (Bicubic) and timm's resample_abs_pos_embed (BicubicAntialias). Computed in double.
std::vector<float> resample_pos_grid(const float* grid, int g0, int g1, int D, PosResample method);

}  // namespace vit
