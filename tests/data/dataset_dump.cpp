// dataset_dump (test tool): everything bora's DatasetReader hands out for a dataset
// folder, as JSON, for the hf test that reads the same shards with h5py
// (tests/data/test_hf_data.py).
//
//   dataset_dump --data DIR --out dump.json [--verify_hash true]
//
// {"tasks": [{"name", "index", "shard",
//             "splits": {"train": {"tokens": [[ids of sequence 0], ...],   read(i)
//                                  "prompt_len": [...], "length": [...], "doc_index": [...],
//                                  "range_tokens": [...], "range_offsets": [...],
//                                  "range_prompt_len": [...]},                read_range(0, N)
//                        "validation": ..., "test": ...}}, ...]}
#include <string>
#include <vector>

#include "core/error.h"
#include "core/json.h"
#include "core/main.h"
#include "core/options.h"
#include "data/dataset.h"

using bora::Json;

int main(int argc, char** argv) {
  return bora::guarded_main("dataset_dump", [&] {
    std::string data, out;
    bool verify_hash = false;
    bora::OptionTable t("dataset_dump", "Dumps what bora's dataset reader reads from every shard (test tool).");
    t.add("data", &data, "dataset folder made by data_prep");
    t.add("out", &out, "JSON file to write");
    t.add("verify_hash", &verify_hash, "check every shard's XXH3-64 against the manifest on open");
    if (!t.parse(argc, argv)) return 0;
    BORA_CHECK(!data.empty() && !out.empty(), ConfigError, "data and out must be set");
    bora::ReaderOptions ro;
    ro.verify_hash = verify_hash;
    bora::DatasetReader reader(data, {}, ro);
    Json tasks = Json::array();
    bora::Sequence seq;
    std::vector<int32_t> range_tokens, range_prompt_len;
    std::vector<int64_t> range_offsets;
    for (int64_t task : reader.open_tasks()) {
      const bora::TaskInfo& info = reader.manifest().tasks[static_cast<size_t>(task)];
      Json splits = Json::object();
      for (bora::Split s : bora::kAllSplits) {
        Json tokens = Json::array(), prompt_len = Json::array(), length = Json::array(), doc = Json::array();
        const int64_t n = reader.size(task, s);
        for (int64_t i = 0; i < n; ++i) {
          reader.read(task, s, i, &seq);
          tokens.push_back(seq.tokens);
          prompt_len.push_back(seq.prompt_len);
          length.push_back(reader.length(task, s, i));
          doc.push_back(reader.doc_index(task, s, i));
          BORA_CHECK(reader.prompt_len(task, s, i) == seq.prompt_len, InternalError, "prompt_len differs");
        }
        reader.read_range(task, s, 0, n, &range_tokens, &range_offsets, &range_prompt_len);
        splits[bora::split_name(s)] = {{"tokens", tokens},          {"prompt_len", prompt_len},
                                       {"length", length},          {"doc_index", doc},
                                       {"range_tokens", range_tokens}, {"range_offsets", range_offsets},
                                       {"range_prompt_len", range_prompt_len}};
      }
      tasks.push_back({{"name", info.name}, {"index", task}, {"shard", info.shard}, {"splits", splits}});
    }
    bora::write_json_file_atomic(out, Json{{"tasks", tasks}}, /*indent=*/-1);
    return 0;
  });
}
