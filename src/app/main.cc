// sqsrelay: the command-line entry point. Subcommands are registered here, in one list.
#include <CLI/CLI.hpp>
#include <spdlog/spdlog.h>

#include "app/send_cmd.h"
#include "app/queue_cmd.h"
#include "app/receive_cmd.h"
#include "app/run_cmd.h"
#include "app/serve.h"

int main(int argc, char** argv) {
  CLI::App app{"sqsrelay: move messages into and out of Amazon SQS, fast and without loss"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "sqsrelay " SQSRELAY_VERSION);
  std::string log_level = "info";
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "critical", "off"}))
      ->capture_default_str();

  sqsrelay::app::serve_options so;
  auto* serve = app.add_subcommand("serve", "Run the embedded SQS-compatible server");
  serve->add_option("--listen", so.listen, "HOST:PORT to listen on")->capture_default_str();
  serve->add_option("--data-dir", so.data_dir, "Directory for queues and messages")
      ->capture_default_str();
  serve->add_flag("--in-memory", so.in_memory, "Keep everything in memory (no durability)");
  serve->add_option("--account-id", so.account_id, "Account id in queue URLs and ARNs")
      ->capture_default_str();
  serve->add_option("--region", so.region, "Region in ARNs and SigV4 scopes")
      ->capture_default_str();
  serve->add_option("--credentials-file", so.credentials_file,
                    "File of ACCESS_KEY_ID:SECRET lines; requests must be SigV4-signed with one "
                    "of them (also $SQSRELAY_CREDENTIALS)");
  serve->add_option("--threads", so.threads, "I/O threads (0: one per core)")
      ->capture_default_str();
  serve->add_option("--max-body-bytes", so.body_limit, "Largest request body accepted (413 "
                    "beyond)")
      ->capture_default_str();
  serve->add_option("--fault", so.faults,
                    "Inject faults (repeatable): comma-separated queue=NAME, latency=10ms, "
                    "jitter=5ms, throttle=RATE, error5xx=RATE, drop=RATE, drop_after=RATE, "
                    "partial=RATE, seed=N; changeable at run time with POST /_sqsrelay/faults");
  serve->add_option("--tls-cert", so.tls_cert, "PEM certificate chain: serve HTTPS");
  serve->add_option("--tls-key", so.tls_key, "PEM private key for --tls-cert");
  auto* ingest_listen =
      serve->add_option("--ingest-listen", so.ingest_listen,
                        "HOST:PORT of the HTTP ingest listener (POST /queues/NAME/messages with a "
                        "JSON array, NDJSON or one JSON value); 'off' for none. When the default "
                        "address is taken, serve starts without it (with a warning)")
          ->capture_default_str();
  serve->add_option("--ingest-token-file", so.ingest_token_file,
                    "File of ingest tokens, one per line, sent as 'Authorization: Bearer T' "
                    "(also $SQSRELAY_INGEST_TOKENS); required to listen beyond loopback");
  serve->add_flag("--ingest-dead-letter", so.ingest_dead_letter,
                  "Store the valid elements of a request with invalid ones and dead-letter "
                  "those (default: answer 400 and store nothing)");
  serve->add_option("--dead-letter-file", so.dead_letter_file,
                    "NDJSON file for ingested elements that can never be stored (default: "
                    "DATA_DIR/dead-letters.ndjson)");
  serve->add_option("--group-commit-linger-us", so.linger_us,
                    "Group commit: wait up to this gap between arriving writes (10x in all) "
                    "before an fdatasync; 0 syncs at once")
      ->capture_default_str();
  serve->add_option("--wal-write-behind", so.write_behind,
                    "Write WAL records with the group commit (one write per fdatasync) "
                    "rather than one write per request")
      ->capture_default_str();
  serve->add_option("--wal-preallocate", so.preallocate,
                    "Prepare each next WAL segment as a file of zeros ahead of use, so an "
                    "fdatasync writes data only (costs one segment of disk ahead)")
      ->capture_default_str();
  serve->add_flag("--metrics-remote", so.metrics_remote,
                  "Answer GET /metrics to non-loopback peers too (it has no authentication; "
                  "by default they get 403)");
  serve->add_option("--shutdown-timeout", so.shutdown_seconds,
                    "Seconds SIGTERM waits for requests in progress")
      ->capture_default_str();

  sqsrelay::app::send_options send_opts;
  auto* send = sqsrelay::app::add_send_command(app, send_opts);

  sqsrelay::app::receive_options receive_opts;
  auto* receive = sqsrelay::app::add_receive_command(app, receive_opts);
  sqsrelay::app::queue_options queue_opts;
  auto* queue = sqsrelay::app::add_queue_command(app, queue_opts);

  sqsrelay::app::run_options run_opts;
  auto* run = sqsrelay::app::add_run_command(app, run_opts);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // app.exit prints help or the error. Help and version exit 0; every usage error exits 2,
    // the documented code for bad arguments (CLI11's own codes are 100+).
    return app.exit(e) == 0 ? 0 : 2;
  }
  spdlog::set_level(spdlog::level::from_str(log_level));
  so.ingest_listen_explicit = ingest_listen->count() > 0;
  if (serve->parsed()) return sqsrelay::app::run_serve(so);
  if (send->parsed()) return sqsrelay::app::run_send(send_opts);
  if (receive->parsed()) return sqsrelay::app::run_receive(receive_opts);
  if (queue->parsed()) return sqsrelay::app::run_queue(queue_opts);
  if (run->parsed()) return sqsrelay::app::run_relay(run_opts);
  return 2;
}
