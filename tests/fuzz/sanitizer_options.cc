// Linked into every fuzz target: make UBSan findings fail the run (the `fuzz` preset builds
// with recoverable UBSan, which would only print them) and print their stacks.
extern "C" const char* __ubsan_default_options() {
  return "halt_on_error=1:print_stacktrace=1";
}
