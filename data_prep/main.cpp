// data_prep: corpus (CSV, JSONL, folder of text files) -> tokenized, split, sharded
// HDF5 dataset + manifest.json for bora-train. See `data_prep --help` and
// docs/data-format.md.
#include "core/main.h"
#include "core/options.h"
#include "data_prep/prepare.h"
#include "model/tokenizer.h"

namespace {

const char* kSummary =
    "Tokenizes a corpus into a bora dataset folder: HDF5 shards (a task never spans two\n"
    "files) and manifest.json with every task's counts.\n"
    "\n"
    "Rules, in this order (as the BoRA reference on ton.csv):\n"
    "  1. drop rows with missing values (drop_missing, na_values)\n"
    "  2. task name = input name lower-cased, '.' removed (normalize_names);\n"
    "     two input names that normalise to one task are an error\n"
    "  3. keep only the named tasks (tasks), if given\n"
    "  4. keep tasks with min_docs < rows < max_docs (docs_range=exclusive) or\n"
    "     min_docs <= rows <= max_docs (inclusive); rows counted after rule 1\n"
    "  5. drop documents with fewer than min_text_chars characters\n"
    "  6. keep the first max_tasks tasks in name order (not with --tasks)\n"
    "  7. split each task: shuffle by (seed, task name, its documents), sizes by\n"
    "     largest remainder of n * split_fractions\n"
    "  8. sequence = [bos] + prompt + text + [eos], cut to max_len tokens;\n"
    "     prompt_len = 1 + prompt tokens are not loss targets\n"
    "Tasks dropped by rules 4-5 are logged, or an error when named in --tasks.\n"
    "\n"
    "example:\n"
    "  data_prep --input ton.csv --tokenizer models/opt-350m --out data/ton";

}  // namespace

int main(int argc, char** argv) {
  return bora::guarded_main("data_prep", [&] {
    bora::PrepConfig cfg;
    bora::OptionTable table("data_prep", kSummary);
    cfg.declare(table);
    if (!table.parse(argc, argv)) return 0;
    cfg.validate();
    bora::Tokenizer tokenizer = cfg.load_tokenizer();
    bora::run_data_prep(cfg, tokenizer);
    return 0;
  });
}
