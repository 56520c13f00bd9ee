// manifest.json to and from JSON, with validation (manifest.h).
#include "data/manifest.h"

#include <map>
#include <set>

#include "core/error.h"
#include "core/fs.h"

namespace bora {

int64_t Manifest::find_task(const std::string& name) const {
  for (size_t i = 0; i < tasks.size(); ++i)
    if (tasks[i].name == name) return static_cast<int64_t>(i);
  return -1;
}

SplitCounts Manifest::total(Split s) const {
  SplitCounts t;
  for (const TaskInfo& ti : tasks) {
    const SplitCounts& c = ti.split(s);
    t.sequences += c.sequences;
    t.tokens += c.tokens;
    t.target_tokens += c.target_tokens;
    t.truncated += c.truncated;
  }
  return t;
}

namespace {

OrderedJson counts_json(const SplitCounts& c) {
  OrderedJson j;
  j["sequences"] = c.sequences;
  j["tokens"] = c.tokens;
  j["target_tokens"] = c.target_tokens;
  j["truncated"] = c.truncated;
  return j;
}

SplitCounts counts_from(const Json& j, const std::string& origin) {
  SplitCounts c;
  c.sequences = json_get<int64_t>(j, "sequences", origin);
  c.tokens = json_get<int64_t>(j, "tokens", origin);
  c.target_tokens = json_get<int64_t>(j, "target_tokens", origin);
  c.truncated = json_get<int64_t>(j, "truncated", origin);
  return c;
}

}  // namespace

OrderedJson Manifest::to_json() const {
  OrderedJson j;
  j["magic"] = kDatasetMagic;
  j["format_version"] = format_version;
  j["created_by"] = created_by;
  j["max_len"] = max_len;
  j["token_dtype"] = token_dtype_name(token_dtype);
  j["chunk_tokens"] = chunk_tokens;
  OrderedJson tok;
  tok["identity"] = tokenizer_identity;
  tok["vocab_size"] = vocab_size;
  tok["bos_id"] = bos_id;
  tok["eos_id"] = eos_id;
  j["tokenizer"] = tok;
  OrderedJson totals;
  int64_t docs = 0;
  for (const TaskInfo& t : tasks) docs += t.documents;
  totals["tasks"] = static_cast<int64_t>(tasks.size());
  totals["documents"] = docs;
  for (Split s : kAllSplits) totals[split_name(s)] = counts_json(total(s));
  j["totals"] = totals;
  OrderedJson shards_j = OrderedJson::array();
  for (const ShardInfo& s : shards) {
    OrderedJson sj;
    sj["file"] = s.file;
    sj["bytes"] = s.bytes;
    sj["xxh3"] = s.xxh3;
    sj["tasks"] = s.tasks;
    shards_j.push_back(sj);
  }
  j["shards"] = shards_j;
  OrderedJson tasks_j = OrderedJson::array();
  for (const TaskInfo& t : tasks) {
    OrderedJson tj;
    tj["name"] = t.name;
    tj["source_name"] = t.source_name;
    tj["shard"] = t.shard;
    tj["rows"] = t.rows;
    tj["documents"] = t.documents;
    for (Split s : kAllSplits) tj[split_name(s)] = counts_json(t.split(s));
    tasks_j.push_back(tj);
  }
  j["tasks"] = tasks_j;
  j["options"] = options;
  return j;
}

Manifest Manifest::from_json(const Json& j, const std::string& origin) {
  BORA_CHECK(j.is_object(), FormatError, origin, ": not a JSON object");
  std::string magic = json_get<std::string>(j, "magic", origin);
  BORA_CHECK(magic == kDatasetMagic, FormatError, origin, ": magic is '", magic, "', expected '",
             kDatasetMagic, "' (not a bora dataset manifest)");
  Manifest m;
  m.format_version = json_get<int64_t>(j, "format_version", origin);
  BORA_CHECK(m.format_version == kDatasetFormatVersion, FormatError, origin, ": format version ",
             m.format_version, ", this build reads version ", kDatasetFormatVersion,
             " (re-run data_prep with this build)");
  m.created_by = json_get<std::string>(j, "created_by", origin);
  m.max_len = json_get<int64_t>(j, "max_len", origin);
  m.token_dtype = parse_token_dtype(json_get<std::string>(j, "token_dtype", origin), origin);
  m.chunk_tokens = json_get<int64_t>(j, "chunk_tokens", origin);
  const Json tok = json_get<Json>(j, "tokenizer", origin);
  std::string tok_origin = origin + ": tokenizer";
  m.tokenizer_identity = json_get<std::string>(tok, "identity", tok_origin);
  m.vocab_size = json_get<int64_t>(tok, "vocab_size", tok_origin);
  m.bos_id = json_get<int32_t>(tok, "bos_id", tok_origin);
  m.eos_id = json_get<int32_t>(tok, "eos_id", tok_origin);
  if (j.contains("options")) {
    BORA_CHECK(j.at("options").is_object(), FormatError, origin, ": 'options' is not an object");
    m.options = OrderedJson::parse(j.at("options").dump());
  }
  const Json shards_j = json_get<Json>(j, "shards", origin);
  BORA_CHECK(shards_j.is_array(), FormatError, origin, ": 'shards' is not an array");
  for (size_t i = 0; i < shards_j.size(); ++i) {
    std::string o = cat(origin, ": shards[", i, "]");
    ShardInfo s;
    s.file = json_get<std::string>(shards_j[i], "file", o);
    s.bytes = json_get<int64_t>(shards_j[i], "bytes", o);
    s.xxh3 = json_get<std::string>(shards_j[i], "xxh3", o);
    s.tasks = json_get<std::vector<std::string>>(shards_j[i], "tasks", o);
    m.shards.push_back(std::move(s));
  }
  const Json tasks_j = json_get<Json>(j, "tasks", origin);
  BORA_CHECK(tasks_j.is_array(), FormatError, origin, ": 'tasks' is not an array");
  for (size_t i = 0; i < tasks_j.size(); ++i) {
    std::string o = cat(origin, ": tasks[", i, "]");
    TaskInfo t;
    t.name = json_get<std::string>(tasks_j[i], "name", o);
    o = cat(origin, ": task '", t.name, "'");
    t.source_name = json_get<std::string>(tasks_j[i], "source_name", o);
    t.shard = json_get<std::string>(tasks_j[i], "shard", o);
    t.rows = json_get<int64_t>(tasks_j[i], "rows", o);
    t.documents = json_get<int64_t>(tasks_j[i], "documents", o);
    for (Split s : kAllSplits)
      t.splits[static_cast<int>(s)] =
          counts_from(json_get<Json>(tasks_j[i], split_name(s), o), o + " " + split_name(s));
    m.tasks.push_back(std::move(t));
  }
  m.validate(origin);
  return m;
}

void Manifest::validate(const std::string& origin) const {
  BORA_CHECK(vocab_size > 0 && vocab_size <= (int64_t(1) << 31), FormatError, origin,
             ": vocab_size ", vocab_size, " is out of range");
  BORA_CHECK(bos_id >= 0 && bos_id < vocab_size && eos_id >= 0 && eos_id < vocab_size, FormatError,
             origin, ": bos_id ", bos_id, " / eos_id ", eos_id, " not below vocab_size ", vocab_size);
  BORA_CHECK(max_len >= 2, FormatError, origin, ": max_len ", max_len, " < 2");
  BORA_CHECK(chunk_tokens >= 1, FormatError, origin, ": chunk_tokens ", chunk_tokens, " < 1");
  BORA_CHECK(token_dtype == token_dtype_for_vocab(vocab_size), FormatError, origin,
             ": token dtype ", token_dtype_name(token_dtype), " does not match vocab_size ",
             vocab_size);
  BORA_CHECK(!tokenizer_identity.empty(), FormatError, origin, ": empty tokenizer identity");

  std::map<std::string, size_t> shard_of_file;
  for (size_t i = 0; i < shards.size(); ++i) {
    const ShardInfo& s = shards[i];
    BORA_CHECK(!s.file.empty() && s.file.find('/') == std::string::npos && s.file != "." &&
                   s.file != "..",
               FormatError, origin, ": shard file name '", s.file, "' is not a plain file name");
    BORA_CHECK(shard_of_file.emplace(s.file, i).second, FormatError, origin, ": shard '", s.file,
               "' is listed twice");
    BORA_CHECK(s.bytes > 0, FormatError, origin, ": shard '", s.file, "' has ", s.bytes, " bytes");
  }
  std::map<std::string, std::string> listed;  // task -> shard that lists it
  for (const ShardInfo& s : shards)
    for (const std::string& t : s.tasks)
      BORA_CHECK(listed.emplace(t, s.file).second, FormatError, origin, ": task '", t,
                 "' is listed by two shards");
  for (size_t i = 0; i < tasks.size(); ++i) {
    const TaskInfo& t = tasks[i];
    std::string problem = task_name_problem(t.name);
    BORA_CHECK(problem.empty(), FormatError, origin, ": invalid task name '", t.name, "': ", problem);
    if (i > 0)
      BORA_CHECK(tasks[i - 1].name < t.name, FormatError, origin, ": tasks not in strictly "
                 "increasing name order at '", tasks[i - 1].name, "', '", t.name, "'");
    BORA_CHECK(shard_of_file.count(t.shard), FormatError, origin, ": task '", t.name,
               "' is in shard '", t.shard, "', which is not listed in 'shards'");
    auto it = listed.find(t.name);
    BORA_CHECK(it != listed.end() && it->second == t.shard, FormatError, origin, ": task '", t.name,
               "' names shard '", t.shard, "' but that shard's task list does not include it");
    int64_t docs = 0;
    for (Split s : kAllSplits) {
      const SplitCounts& c = t.split(s);
      // Every sequence has >= 1 non-target token (bos) and >= 1 target token.
      BORA_CHECK(c.sequences >= 0 && c.truncated >= 0 && c.truncated <= c.sequences &&
                     c.target_tokens >= c.sequences && c.tokens >= c.target_tokens + c.sequences &&
                     c.tokens <= c.sequences * max_len,
                 FormatError, origin, ": task '", t.name, "' ", split_name(s),
                 ": inconsistent counts (", c.sequences, " sequences, ", c.tokens, " tokens, ",
                 c.target_tokens, " target tokens, max_len ", max_len, ")");
      docs += c.sequences;
    }
    BORA_CHECK(docs == t.documents, FormatError, origin, ": task '", t.name, "' has ", t.documents,
               " documents but its splits hold ", docs);
    BORA_CHECK(t.rows >= t.documents, FormatError, origin, ": task '", t.name, "' has ", t.rows,
               " rows but ", t.documents, " documents");
  }
  BORA_CHECK(listed.size() == tasks.size(), FormatError, origin, ": shards list ", listed.size(),
             " tasks but 'tasks' has ", tasks.size());
}

Manifest Manifest::read(const std::string& dir) {
  std::string path = dir + "/" + kManifestFile;
  return from_json(read_json_file(path), path);
}

void Manifest::write(const std::string& dir) const {
  validate(dir + "/" + kManifestFile);
  write_json_file_atomic(dir + "/" + kManifestFile, to_json());
}

}  // namespace bora
