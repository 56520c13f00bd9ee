#include "bora/bora_config.h"

#include "core/error.h"
#include "core/options.h"

namespace bora {

void BoraConfig::declare(OptionTable& t) {
  t.group("BoRA objective");
  t.add("tau", &tau, "prior precision: 0 = independent tasks, inf = one shared adapter");
  t.add_choice("prior", &prior, kPriorNames,
               "gaussian: tau/2 sum_d ||theta_d - Theta||^2 (paper); l2: tau sum_d,k ||.||_F (reference code)");
  t.add_choice("likelihood_weight", &likelihood_weight, kLikelihoodWeightNames,
               "w_d of each task's mean NLL: its training documents, training target tokens, or 1");
  t.add_choice("theta_update", &theta_update, kThetaUpdateNames,
               "adam: Theta by AdamW on its prior gradient (paper); mean: Theta <- the mean of the theta_d after "
               "each step; noncentered: theta_d = Theta + delta_d, AdamW on Theta with the tasks' summed likelihood "
               "gradient and on delta_d (same objective, large tau no longer slows training; docs/bora.md)");
  t.add("init_noise", &init_noise, "std of the noise in theta_d = Theta + N(0, std^2) at initialisation");
}

void BoraConfig::validate() const {
  BORA_CHECK(tau >= 0 && !std::isnan(tau), ConfigError, "tau must be >= 0 (or inf), got ", tau);
  BORA_CHECK(init_noise >= 0 && std::isfinite(init_noise), ConfigError, "init_noise must be >= 0, got ",
             init_noise);
  BORA_CHECK(!(theta_update == ThetaUpdate::Mean && prior == PriorKind::L2), ConfigError,
             "theta_update = mean is the closed-form optimum of the gaussian prior; use prior = gaussian");
}

}  // namespace bora
