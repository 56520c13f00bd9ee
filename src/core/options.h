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
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

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
  void add(const std::string& key, bool* value, const std::string& help);
  void add(const std::string& key, int* value, const std::string& help);
  void add(const std::string& key, int64_t* value, const std::string& help);
  void add(const std::string& key, double* value, const std::string& help);  // accepts inf
  void add(const std::string& key, std::string* value, const std::string& help);
  // Comma-separated lists: "q_proj,v_proj", "0,1,10,inf".
  void add(const std::string& key, std::vector<std::string>* value, const std::string& help);
  void add(const std::string& key, std::vector<double>* value, const std::string& help);
  // A string restricted to `choices`; --help lists them.
  void add_choice(const std::string& key, std::string* value, std::vector<std::string> choices,
                  const std::string& help);

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
  void add_option(const std::string& key, const std::string& help, std::string kind,
                  std::function<void(const std::string&)> set, std::function<std::string()> get);
  Option& find(const std::string& key);

  std::string program_, summary_, group_;
  std::function<std::string()> version_;
  std::vector<std::unique_ptr<Option>> options_;
};

// Value parsing shared with other readers of "key = value" text.
double parse_double(const std::string& key, const std::string& text);
int64_t parse_int(const std::string& key, const std::string& text);
bool parse_bool(const std::string& key, const std::string& text);
std::vector<std::string> split_list(const std::string& text, char sep = ',');
// Formats a double so that parse_double gives it back exactly ("inf" for infinity).
std::string format_double(double v);

}  // namespace bora
