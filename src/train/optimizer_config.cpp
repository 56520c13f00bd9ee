#include "train/optimizer_config.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"

namespace bora {

void OptimizerConfig::declare(OptionTable& t, const std::string& lr_help) {
  t.add("lr", &lr, lr_help);
  t.add("beta1", &beta1, "AdamW beta1");
  t.add("beta2", &beta2, "AdamW beta2");
  t.add("eps", &eps, "AdamW epsilon");
  t.add("weight_decay", &weight_decay, "AdamW decoupled weight decay");
  t.add_choice("lr_schedule", &schedule, kLrScheduleNames, "learning-rate schedule after warmup");
  t.add("warmup_steps", &warmup_steps, "linear warmup steps");
  t.add("min_lr_ratio", &min_lr_ratio, "cosine floor as a fraction of lr");
  t.add("grad_clip", &grad_clip, "> 0: clip the global gradient norm (0 = off)");
}

void OptimizerConfig::validate() const {
  BORA_CHECK(lr > 0 && std::isfinite(lr), ConfigError, "lr must be > 0, got ", lr);
  BORA_CHECK(beta1 >= 0 && beta1 < 1 && beta2 >= 0 && beta2 < 1, ConfigError, "AdamW betas must be in [0, 1)");
  BORA_CHECK(eps > 0, ConfigError, "eps must be > 0, got ", eps);
  BORA_CHECK(weight_decay >= 0, ConfigError, "weight_decay must be >= 0, got ", weight_decay);
  BORA_CHECK(warmup_steps >= 0, ConfigError, "warmup_steps must be >= 0, got ", warmup_steps);
  BORA_CHECK(min_lr_ratio >= 0 && min_lr_ratio <= 1, ConfigError, "min_lr_ratio must be in [0, 1]");
  BORA_CHECK(grad_clip >= 0, ConfigError, "grad_clip must be >= 0, got ", grad_clip);
}

double OptimizerConfig::lr_at(double peak, int64_t step, int64_t total_steps) const {
  if (warmup_steps > 0 && step < warmup_steps) return peak * (double(step + 1) / double(warmup_steps));
  if (schedule == LrSchedule::Constant) return peak;
  // bora-pretrain's expressions, operation for operation (its bases stay
  // bit-identical); bora-train's warm-up and cosine, off by default, moved by at
  // most an ulp of the lr when the two schedules became one.
  const double span = double(std::max<int64_t>(1, total_steps - warmup_steps));
  const double done = double(step - warmup_steps);
  const double cosine = done >= span ? -1.0 : std::cos(M_PI * done / span);
  return peak * (min_lr_ratio + (1 - min_lr_ratio) * 0.5 * (1 + cosine));
}

}  // namespace bora
