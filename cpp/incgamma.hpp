// ln Γ(a, z), the (unregularised) upper incomplete gamma function, for real a < 1/2 (negative orders included)
// and z > 0: the normaliser of the truncated power law x^(-alpha) e^(-lambda x), which needs a = 1 - alpha < 0.
#pragma once

namespace hts {

/// ln Γ(a, z) = ln ∫_z^∞ t^(a−1) e^(−t) dt for a < 0.5, z > 0 (NaN otherwise). Relative error of Γ ~1e-14.
double log_upper_gamma(double a, double z);

}  // namespace hts
