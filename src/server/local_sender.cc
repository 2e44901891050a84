#include "server/local_sender.h"

#include <fmt/format.h>

#include "server/message_codec.h"
#include "server/queue.h"
#include "server/service.h"

namespace sqsrelay::server {

void local_sender::send(std::string_view queue_name, std::span<const local_message> msgs,
                        completion done) {
  auto q = svc_.find(queue_name);
  if (!q && create_missing_) {
    auto created = svc_.create_queue(queue_name, {}, {});
    if (auto* e = std::get_if<sqs::api_error>(&created)) {
      // A concurrent send may have created it first: creation is idempotent for equal
      // (default) attributes, so any error here is real (e.g. an invalid name).
      done(e, {});
      return;
    }
    q = std::get<std::shared_ptr<queue>>(created);
  }
  if (!q) {
    auto e = sqs::errors::queue_does_not_exist();
    done(&e, {});
    return;
  }
  auto attrs = q->attributes();
  local_send_result res;
  std::vector<prepared_message> batch;
  batch.reserve(sqs::max_batch_entries);
  uint64_t last_lsn = 0;
  int64_t now = svc_.clk().wall_ms();
  auto flush = [&]() -> bool {
    if (batch.empty()) return true;
    auto lsn = q->send(batch, now, svc_.options().account_id);
    if (!lsn) {
      auto e = sqs::errors::service_unavailable("The message store rejected the write: " +
                                                lsn.error().message());
      svc_.note_store_refusal(e.message);
      done(&e, {});
      return false;
    }
    last_lsn = *lsn;
    res.stored += batch.size();
    batch.clear();
    return true;
  };
  for (size_t i = 0; i < msgs.size(); ++i) {
    const auto& m = msgs[i];
    std::optional<sqs::api_error> err;
    if (m.body.empty())
      err = sqs::errors::missing_parameter("MessageBody");
    else if (!sqs::valid_message_text(m.body))
      err = sqs::errors::invalid_message_contents();
    else if (auto e = sqs::validate_attributes(m.attributes))
      err = std::move(e);
    else if (sqs::message_size(m.body, m.attributes) >
             static_cast<size_t>(attrs->maximum_message_size))
      err = sqs::errors::invalid_parameter_value(fmt::format(
          "One or more parameters are invalid. Reason: Message must be shorter than {} bytes.",
          attrs->maximum_message_size));
    else if (m.delay_seconds > 900)
      err = sqs::errors::invalid_parameter_value("DelaySeconds must be from 0 to 900.");
    if (err) {
      res.rejected.push_back({i, std::move(*err)});
      continue;
    }
    prepared_message pm;
    pm.body = m.body;
    pm.attributes = m.attributes;
    pm.delay_seconds = m.delay_seconds >= 0 ? m.delay_seconds : attrs->delay_seconds;
    pm.id = svc_.rng().next16();
    pm.md5_body = md5(m.body);
    if (!m.attributes.empty()) pm.md5_attributes = sqs::md5_of_attributes(m.attributes);
    batch.push_back(pm);
    if (batch.size() == sqs::max_batch_entries && !flush()) return;
  }
  if (!flush()) return;
  if (res.stored == 0) {
    done(nullptr, std::move(res));
    return;
  }
  svc_.log().when_durable(last_lsn, [svc = &svc_, done = std::move(done),
                                     res = std::move(res)](error_code ec) mutable {
    if (ec) {
      auto e = sqs::errors::service_unavailable("The message store could not sync: " +
                                                ec.message());
      svc->note_store_refusal(e.message);
      done(&e, {});
      return;
    }
    done(nullptr, std::move(res));
  });
}

}  // namespace sqsrelay::server
