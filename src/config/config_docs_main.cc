// Prints docs/configuration.md, generated from the option tables: run
//   sqsrelay-config-docs > docs/configuration.md
// (config_test fails when the checked-in file differs).
#include <cstdio>

#include "config/relay_config.h"

int main() {
  std::string text = sqsrelay::config::configuration_markdown();
  std::fwrite(text.data(), 1, text.size(), stdout);
  return 0;
}
