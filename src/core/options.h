// One table of options per tool: it parses the command line and INI files through
// Boost.Program_options, generates --help (grouped, with defaults) and writes the
// resolved configuration back as INI. Each component owns a config struct that
// declares its own keys and validates itself in one place:
//
//   struct TrainConfig {
//     double lr = 1e-4;
//     void declare(OptionTable& t) { t.group("optimizer"); t.add("lr", &lr, "learning rate"); }
//     void validate() const { BORA_CHECK(lr > 0, ConfigError, "lr must be > 0, got ", lr); }
//   };
//
// Keys are flat (`tau`, `lr`), the same on the command line (`--tau 10` or
// `--tau=10`) and in INI files (`tau = 10`). Precedence: command line, then the
// --config files (a later file wins over an earlier one), then the default.
// An unknown key or an unparsable value is a ConfigError naming it.
//
// A choice is an enum with one name table (`Names<E>`): the names are what the
// command line, INI files, --help and the resolved configuration say; code
// switches on the enum. A key marked resume_safe() at its declaration may change
// between a checkpoint and the run that resumes it; every other key defines the run.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "core/error.h"

namespace bora {

class OptionTable {
 public:
  OptionTable(std::string program, std::string summary);
  ~OptionTable();
  OptionTable(const OptionTable&) = delete;
  OptionTable& operator=(const OptionTable&) = delete;

  // Options added after this call are listed under `title` in --help.
  void group(const std::string& title);

  // Each add() binds `key` to a variable; its current value is the default.
  OptionTable& add(const std::string& key, bool* value, const std::string& help);
  OptionTable& add(const std::string& key, int* value, const std::string& help);
  OptionTable& add(const std::string& key, int64_t* value, const std::string& help);
  OptionTable& add(const std::string& key, double* value, const std::string& help);  // accepts inf
  OptionTable& add(const std::string& key, std::string* value, const std::string& help);
  // Comma-separated lists: "q_proj,v_proj", "0,1,10,inf".
  OptionTable& add(const std::string& key, std::vector<std::string>* value, const std::string& help);
  OptionTable& add(const std::string& key, std::vector<double>* value, const std::string& help);
  // A string restricted to `choices`; --help lists them.
  OptionTable& add_choice(const std::string& key, std::string* value, std::vector<std::string> choices,
                          const std::string& help);
  // An enum restricted to the entries of `names`; --help lists them.
  template <class E>
  OptionTable& add_choice(const std::string& key, E* value, const std::vector<std::pair<const char*, E>>& names,
                          const std::string& help);
  // Marks the option just added as one that may change on resume (output, logging,
  // evaluation cadence, the budget, performance knobs).
  OptionTable& resume_safe();
  std::set<std::string> resume_safe_keys() const;

  // Parses argv and the --config files. Returns false when --help was asked for
  // (the help text has been printed to stdout); throws ConfigError on bad input.
  bool parse(int argc, const char* const* argv);
  // Parses INI text as if it were a --config file named `origin` (for tests and
  // for reading back a run folder's resolved configuration).
  void parse_ini(const std::string& text, const std::string& origin);

  std::string help() const;
  // Makes --version print `version()` and exit (parse() returns false), like --help.
  void set_version(std::function<std::string()> version) { version_ = std::move(version); }
  // Every key = value in table order, with group headers as comments.
  std::string to_ini() const;
  std::map<std::string, std::string> values() const;
  // True when the user gave `key` explicitly (command line or config file).
  bool is_set(const std::string& key) const;
  bool has(const std::string& key) const;

 public:
  struct Option;  // defined in options.cpp

 private:
  OptionTable& add_option(const std::string& key, const std::string& help, std::string kind,
                  std::function<void(const std::string&)> set, std::function<std::string()> get);
  Option& find(const std::string& key);

  std::string program_, summary_, group_;
  std::function<std::string()> version_;
  std::vector<std::unique_ptr<Option>> options_;
};

std::string trim_text(const std::string& text);  // declared with the value parsers below

// An enum's one table of names (see the header comment).
template <class E>
using Names = std::vector<std::pair<const char*, E>>;

template <class E>
const char* name_of(const Names<E>& names, E value) {
  for (const auto& [name, v] : names)
    if (v == value) return name;
  BORA_THROW(InternalError, "enum value ", static_cast<int>(value), " has no name");
}

// "a,b,c": the names, for messages.
template <class E>
std::string names_list(const Names<E>& names) {
  std::string all;
  for (const auto& [name, v] : names) all += (all.empty() ? "" : ",") + std::string(name);
  return all;
}

template <class E>
E parse_name(const Names<E>& names, const std::string& key, const std::string& text) {
  for (const auto& [name, v] : names)
    if (text == name) return v;
  BORA_THROW(ConfigError, "option '", key, "': '", text, "' is not one of {", names_list(names), "}");
}

template <class E>
OptionTable& OptionTable::add_choice(const std::string& key, E* value, const Names<E>& names,
                                     const std::string& help) {
  add_option(key, help + " {" + names_list(names) + "}", "choice",
             [=](const std::string& s) { *value = parse_name(names, key, trim_text(s)); },
             [=] { return std::string(name_of(names, *value)); });
  return *this;
}

// Value parsing shared with other readers of "key = value" text.
double parse_double(const std::string& key, const std::string& text);
int64_t parse_int(const std::string& key, const std::string& text);
bool parse_bool(const std::string& key, const std::string& text);
std::vector<std::string> split_list(const std::string& text, char sep = ',');
// `text` without leading and trailing blanks.
std::string trim_text(const std::string& text);
// The `key = value` pairs of INI text, in order, for keys of any tool: blank lines
// and comments skipped (a line starting with '#' or ';', or the rest of a line from
// a '#' after a blank; a '#' inside a value, as in a path, stays); keys are flat,
// so under a [section] header a key reads "section.key", which no option has. The
// one INI reader: OptionTable::parse_ini, run folders' config.ini and checkpoints.
// ConfigError naming `origin` for malformed text.
std::vector<std::pair<std::string, std::string>> read_ini(const std::string& text, const std::string& origin);
// Formats a double so that parse_double gives it back exactly ("inf" for infinity).
std::string format_double(double v);

}  // namespace bora
