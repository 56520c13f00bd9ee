#include "core/options.h"

#include <boost/program_options.hpp>

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <limits>
#include <sstream>

#include "core/error.h"

namespace po = boost::program_options;

namespace bora {

struct OptionTable::Option {
  std::string key, help, group, kind, default_text;
  std::function<void(const std::string&)> set;
  std::function<std::string()> get;
  bool is_set = false;
  bool resume_safe = false;
};

namespace {

template <class T>
std::string join(const std::vector<T>& v, const std::function<std::string(const T&)>& f) {
  std::string out;
  for (size_t i = 0; i < v.size(); ++i) out += (i ? "," : "") + f(v[i]);
  return out;
}

}  // namespace

std::string trim_text(const std::string& s) {
  size_t b = s.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return "";
  size_t e = s.find_last_not_of(" \t\r\n");
  return s.substr(b, e - b + 1);
}

double parse_double(const std::string& key, const std::string& text) {
  std::string t = trim_text(text);
  if (t == "inf" || t == "+inf" || t == "infinity") return std::numeric_limits<double>::infinity();
  if (t == "-inf") return -std::numeric_limits<double>::infinity();
  char* end = nullptr;
  errno = 0;
  double v = std::strtod(t.c_str(), &end);
  BORA_CHECK(!t.empty() && end == t.c_str() + t.size() && errno != ERANGE && !std::isnan(v),
             ConfigError, "option '", key, "': '", text, "' is not a number");
  return v;
}

int64_t parse_int(const std::string& key, const std::string& text) {
  std::string t = trim_text(text);
  char* end = nullptr;
  errno = 0;
  long long v = std::strtoll(t.c_str(), &end, 10);
  BORA_CHECK(!t.empty() && end == t.c_str() + t.size() && errno != ERANGE, ConfigError,
             "option '", key, "': '", text, "' is not an integer");
  return v;
}

bool parse_bool(const std::string& key, const std::string& text) {
  std::string t = trim_text(text);
  if (t == "true" || t == "1" || t == "yes" || t == "on") return true;
  if (t == "false" || t == "0" || t == "no" || t == "off") return false;
  BORA_THROW(ConfigError, "option '", key, "': '", text, "' is not a boolean (true/false)");
}

std::vector<std::string> split_list(const std::string& text, char sep) {
  std::vector<std::string> out;
  std::stringstream ss(text);
  std::string item;
  while (std::getline(ss, item, sep)) {
    item = trim_text(item);
    if (!item.empty()) out.push_back(item);
  }
  return out;
}

std::string format_double(double v) {
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  char buf[64];
  // %.17g round-trips every double; prefer the short form when it is exact.
  for (int prec : {6, 10, 15, 17}) {
    std::snprintf(buf, sizeof buf, "%.*g", prec, v);
    if (std::strtod(buf, nullptr) == v) break;
  }
  return buf;
}

OptionTable::OptionTable(std::string program, std::string summary)
    : program_(std::move(program)), summary_(std::move(summary)), group_("general") {}
OptionTable::~OptionTable() = default;

void OptionTable::group(const std::string& title) { group_ = title; }

OptionTable& OptionTable::add_option(const std::string& key, const std::string& help, std::string kind,
                             std::function<void(const std::string&)> set,
                             std::function<std::string()> get) {
  BORA_CHECK(!has(key) && key != "help" && key != "config", InternalError,
             "option '", key, "' declared twice");
  auto opt = std::make_unique<Option>();
  opt->key = key;
  opt->help = help;
  opt->group = group_;
  opt->kind = std::move(kind);
  opt->set = std::move(set);
  opt->get = std::move(get);
  opt->default_text = opt->get();
  options_.push_back(std::move(opt));
  return *this;
}

OptionTable& OptionTable::resume_safe() {
  BORA_CHECK(!options_.empty(), InternalError, "resume_safe() before any option");
  options_.back()->resume_safe = true;
  return *this;
}

std::set<std::string> OptionTable::resume_safe_keys() const {
  std::set<std::string> keys;
  for (const auto& o : options_)
    if (o->resume_safe) keys.insert(o->key);
  return keys;
}

OptionTable& OptionTable::add(const std::string& key, bool* v, const std::string& help) {
  return add_option(key, help, "bool", [=](const std::string& s) { *v = parse_bool(key, s); },
             [=] { return std::string(*v ? "true" : "false"); });
}
OptionTable& OptionTable::add(const std::string& key, int* v, const std::string& help) {
  return add_option(key, help, "int",
             [=](const std::string& s) {
               int64_t x = parse_int(key, s);
               BORA_CHECK(x >= std::numeric_limits<int>::min() && x <= std::numeric_limits<int>::max(),
                          ConfigError, "option '", key, "': ", s, " is out of range");
               *v = static_cast<int>(x);
             },
             [=] { return std::to_string(*v); });
}
OptionTable& OptionTable::add(const std::string& key, int64_t* v, const std::string& help) {
  return add_option(key, help, "int", [=](const std::string& s) { *v = parse_int(key, s); },
             [=] { return std::to_string(*v); });
}
OptionTable& OptionTable::add(const std::string& key, double* v, const std::string& help) {
  return add_option(key, help, "float", [=](const std::string& s) { *v = parse_double(key, s); },
             [=] { return format_double(*v); });
}
OptionTable& OptionTable::add(const std::string& key, std::string* v, const std::string& help) {
  return add_option(key, help, "text", [=](const std::string& s) { *v = trim_text(s); }, [=] { return *v; });
}
OptionTable& OptionTable::add(const std::string& key, std::vector<std::string>* v, const std::string& help) {
  return add_option(key, help, "list", [=](const std::string& s) { *v = split_list(s); },
             [=] { return join<std::string>(*v, [](const std::string& x) { return x; }); });
}
OptionTable& OptionTable::add(const std::string& key, std::vector<double>* v, const std::string& help) {
  return add_option(key, help, "floats",
             [=](const std::string& s) {
               v->clear();
               for (const auto& item : split_list(s)) v->push_back(parse_double(key, item));
             },
             [=] { return join<double>(*v, [](const double& x) { return format_double(x); }); });
}
OptionTable& OptionTable::add_choice(const std::string& key, std::string* v, std::vector<std::string> choices,
                             const std::string& help) {
  std::string all = join<std::string>(choices, [](const std::string& x) { return x; });
  return add_option(key, help + " {" + all + "}", "choice",
             [=](const std::string& s) {
               std::string t = trim_text(s);
               for (const auto& c : choices)
                 if (c == t) {
                   *v = t;
                   return;
                 }
               BORA_THROW(ConfigError, "option '", key, "': '", s, "' is not one of {", all, "}");
             },
             [=] { return *v; });
}

bool OptionTable::has(const std::string& key) const {
  for (const auto& o : options_)
    if (o->key == key) return true;
  return false;
}

OptionTable::Option& OptionTable::find(const std::string& key) {
  for (auto& o : options_)
    if (o->key == key) return *o;
  BORA_THROW(ConfigError, "unknown option '", key, "' (see --help)");
}

bool OptionTable::is_set(const std::string& key) const {
  for (const auto& o : options_)
    if (o->key == key) return o->is_set;
  return false;
}

namespace {

// The command line as Boost sees it: every option a string; typed parsing is ours,
// so that errors name the key and the offending text the same way for the command
// line and INI files (read_ini).
po::options_description describe_cli(const std::vector<std::unique_ptr<OptionTable::Option>>& opts,
                                     bool with_version) {
  po::options_description desc;
  if (with_version) desc.add_options()("version", "print the build (LibTorch, CUDA, NCCL, MPI) and exit");
  desc.add_options()("help,h", "print this help and exit")(
      "config", po::value<std::vector<std::string>>()->composing(),
      "an INI file of the options below (key = value); repeatable");
  for (const auto& o : opts) {
    auto* sem = po::value<std::string>();
    if (o->kind == "bool") sem->implicit_value("true");
    desc.add_options()(o->key.c_str(), sem, o->help.c_str());
  }
  return desc;
}

}  // namespace

bool OptionTable::parse(int argc, const char* const* argv) {
  po::variables_map cli;
  try {
    po::store(po::command_line_parser(argc, argv).options(describe_cli(options_, bool(version_))).run(), cli);
  } catch (const po::error& e) {
    BORA_THROW(ConfigError, program_, ": ", e.what(), " (see --help)");
  }
  if (cli.count("help")) {
    std::cout << help();
    return false;
  }
  if (version_ && cli.count("version")) {
    std::cout << version_() << "\n";
    return false;
  }
  // Config files first (in order, so a later one overrides), then the command line.
  if (cli.count("config")) {
    for (const auto& path : cli["config"].as<std::vector<std::string>>()) {
      std::ifstream in(path);
      BORA_CHECK(in.good(), ConfigError, "cannot read config file '", path, "'");
      std::stringstream ss;
      ss << in.rdbuf();
      parse_ini(ss.str(), path);
    }
  }
  for (auto& o : options_) {
    if (!cli.count(o->key)) continue;
    o->set(cli[o->key].as<std::string>());
    o->is_set = true;
  }
  return true;
}

void OptionTable::parse_ini(const std::string& text, const std::string& origin) {
  for (const auto& [key, value] : read_ini(text, origin)) {
    Option* o = nullptr;
    for (auto& opt : options_)
      if (opt->key == key) o = opt.get();
    BORA_CHECK(o, ConfigError, origin, ": unknown option '", key, "'");
    try {
      o->set(value);
    } catch (const ConfigError& e) {
      BORA_THROW(ConfigError, origin, ": ", e.message());
    }
    o->is_set = true;
  }
}

std::vector<std::pair<std::string, std::string>> read_ini(const std::string& text, const std::string& origin) {
  // Literal, so that a value keeps every character a resolved configuration wrote
  // (a path may hold '#'): a comment is a whole line starting with '#' or ';', or
  // the rest of a line from a '#' that follows a blank.
  std::vector<std::pair<std::string, std::string>> out;
  std::istringstream in(text);
  std::string line, section;
  for (int number = 1; std::getline(in, line); ++number) {
    line = trim_text(line);
    if (line.empty() || line[0] == '#' || line[0] == ';') continue;
    if (line.front() == '[' && line.back() == ']') {
      section = trim_text(line.substr(1, line.size() - 2)) + ".";
      continue;
    }
    const size_t eq = line.find('=');
    BORA_CHECK(eq != std::string::npos && eq > 0, ConfigError, origin, ": line ", number, " is not key = value: '",
               line, "'");
    std::string value = line.substr(eq + 1);
    for (size_t h = value.find('#'); h != std::string::npos; h = value.find('#', h + 1))
      if (h > 0 && (value[h - 1] == ' ' || value[h - 1] == '\t')) {
        value.resize(h);
        break;
      }
    out.emplace_back(section + trim_text(line.substr(0, eq)), trim_text(value));
  }
  return out;
}

std::string OptionTable::help() const {
  std::ostringstream os;
  os << "usage: " << program_ << " [--config FILE.ini] [--key value ...]\n\n" << summary_ << "\n\n";
  os << "  --help                  print this help and exit\n";
  if (version_) os << "  --version               print the build (LibTorch, CUDA, NCCL, MPI) and exit\n";
  os << "  --config FILE           an INI file of the options below (key = value); repeatable\n";
  std::string group;
  for (const auto& o : options_) {
    if (o->group != group) {
      group = o->group;
      os << "\n" << group << ":\n";
    }
    std::string head = "  --" + o->key + " <" + o->kind + ">";
    if (head.size() < 34) head.resize(34, ' ');
    else head += "\n" + std::string(34, ' ');
    os << head << o->help << " [default: " << (o->default_text.empty() ? "\"\"" : o->default_text)
       << "]\n";
  }
  return os.str();
}

std::string OptionTable::to_ini() const {
  std::ostringstream os;
  os << "# resolved configuration of " << program_ << "\n";
  std::string group;
  for (const auto& o : options_) {
    if (o->group != group) {
      group = o->group;
      os << "\n# " << group << "\n";
    }
    os << o->key << " = " << o->get() << "\n";
  }
  return os.str();
}

std::map<std::string, std::string> OptionTable::values() const {
  std::map<std::string, std::string> out;
  for (const auto& o : options_) out[o->key] = o->get();
  return out;
}

}  // namespace bora
