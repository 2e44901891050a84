#include "sqs/query_codec.h"

#include <fmt/format.h>

#include <boost/json/array.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>
#include <boost/system/system_error.hpp>
#include <boost/throw_exception.hpp>
#include <boost/url/encoding_opts.hpp>
#include <boost/url/pct_string_view.hpp>
#include <charconv>
#include <cstdint>
#include <map>
#include <optional>
#include <span>

namespace sqsrelay::sqs {
namespace {

namespace json = boost::json;

constexpr std::string_view xml_namespace = "http://queue.amazonaws.com/doc/2012-11-05/";

// ---------------------------------------------------------------------------------------------
// The model.
//
// Hand-written because nothing in Debian speaks SQS's Query shapes (the AWS C++ SDK is not
// packaged; botocore is Python) and the ~30 shapes involved change rarely. Transcribed from the
// Query-protocol model of AWS CLI v2.9 (awscli/botocore/data/sqs/2012-11-05/service-2.json).
// JSON member names are the same in that model and the current JSON-protocol one; only the Query
// serialization names (locationName) differ. Lines marked "newer" come from the JSON model,
// which has members and actions the CLI v2.9 model predates.
//
// Every SQS list and map is "flattened": list items are `<prefix>.<item_name>.N` on the wire and
// repeated <item_name> elements in XML; map entries are `<prefix>.<query_name>.N.<key|value>`
// and repeated <query_name><key/><value/></query_name> elements. No wrapper elements.
// query_codec_test checks this table against the CLI's own serializer and parser.

enum class kind : std::uint8_t { string, integer, boolean, blob, structure, list, map };

struct shape;

struct member {
  std::string_view json_name;   // the member's name in both models
  std::string_view query_name;  // its locationName; for a list, only the empty-list marker
  const shape* type;
};

struct shape {
  kind type;
  std::span<const member> members;  // structure
  const shape* item;                // list item or map value
  std::string_view item_name;       // list
  std::string_view key_name;        // map
  std::string_view value_name;      // map
};

constexpr shape scalar(kind k) { return {k, {}, nullptr, {}, {}, {}}; }
constexpr shape structure(std::span<const member> members) {
  return {kind::structure, members, nullptr, {}, {}, {}};
}
constexpr shape list_of(const shape& item, std::string_view item_name) {
  return {kind::list, {}, &item, item_name, {}, {}};
}
constexpr shape map_of(const shape& value, std::string_view key_name) {
  return {kind::map, {}, &value, {}, key_name, "Value"};
}
constexpr member field(std::string_view name, const shape& type) { return {name, name, &type}; }
constexpr member field(std::string_view json_name, std::string_view query_name, const shape& type) {
  return {json_name, query_name, &type};
}

constexpr shape string_shape = scalar(kind::string);
constexpr shape integer_shape = scalar(kind::integer);
constexpr shape boolean_shape = scalar(kind::boolean);
constexpr shape blob_shape = scalar(kind::blob);

constexpr shape string_list = list_of(string_shape, "StringListValue");
constexpr shape binary_list = list_of(blob_shape, "BinaryListValue");
constexpr shape attribute_name_list = list_of(string_shape, "AttributeName");
constexpr shape system_attribute_name_list = list_of(string_shape, "MessageSystemAttributeName");
constexpr shape message_attribute_name_list = list_of(string_shape, "MessageAttributeName");
constexpr shape tag_key_list = list_of(string_shape, "TagKey");
constexpr shape account_id_list = list_of(string_shape, "AWSAccountId");
constexpr shape action_name_list = list_of(string_shape, "ActionName");
constexpr shape queue_url_list = list_of(string_shape, "QueueUrl");

// QueueAttributeMap, MessageSystemAttributeMap; TagMap.
constexpr shape string_map = map_of(string_shape, "Name");
constexpr shape tag_map = map_of(string_shape, "Key");

// MessageAttributeValue; MessageSystemAttributeValue has the same members.
constexpr member attribute_value_members[] = {
    field("StringValue", string_shape),
    field("BinaryValue", blob_shape),
    field("StringListValues", "StringListValue", string_list),
    field("BinaryListValues", "BinaryListValue", binary_list),
    field("DataType", string_shape),
};
constexpr shape attribute_value = structure(attribute_value_members);
constexpr shape attribute_value_map = map_of(attribute_value, "Name");

// --- Request shapes.
constexpr member queue_url_only_members[] = {field("QueueUrl", string_shape)};
constexpr shape queue_url_only = structure(queue_url_only_members);

constexpr member create_queue_members[] = {
    field("QueueName", string_shape),
    field("Attributes", "Attribute", string_map),
    field("tags", "Tag", tag_map),
};
constexpr member get_queue_url_members[] = {
    field("QueueName", string_shape),
    field("QueueOwnerAWSAccountId", string_shape),
};
constexpr member list_queues_members[] = {
    field("QueueNamePrefix", string_shape),
    field("NextToken", string_shape),
    field("MaxResults", integer_shape),
};
constexpr member get_queue_attributes_members[] = {
    field("QueueUrl", string_shape),
    field("AttributeNames", attribute_name_list),
};
constexpr member set_queue_attributes_members[] = {
    field("QueueUrl", string_shape),
    field("Attributes", "Attribute", string_map),
};
constexpr member tag_queue_members[] = {
    field("QueueUrl", string_shape),
    field("Tags", "Tag", tag_map),
};
constexpr member untag_queue_members[] = {
    field("QueueUrl", string_shape),
    field("TagKeys", tag_key_list),
};
constexpr member send_message_members[] = {
    field("QueueUrl", string_shape),
    field("MessageBody", string_shape),
    field("DelaySeconds", integer_shape),
    field("MessageAttributes", "MessageAttribute", attribute_value_map),
    field("MessageSystemAttributes", "MessageSystemAttribute", attribute_value_map),
    field("MessageDeduplicationId", string_shape),
    field("MessageGroupId", string_shape),
};
constexpr member send_entry_members[] = {
    field("Id", string_shape),
    field("MessageBody", string_shape),
    field("DelaySeconds", integer_shape),
    field("MessageAttributes", "MessageAttribute", attribute_value_map),
    field("MessageSystemAttributes", "MessageSystemAttribute", attribute_value_map),
    field("MessageDeduplicationId", string_shape),
    field("MessageGroupId", string_shape),
};
constexpr shape send_entry = structure(send_entry_members);
constexpr shape send_entries = list_of(send_entry, "SendMessageBatchRequestEntry");
constexpr member send_message_batch_members[] = {
    field("QueueUrl", string_shape),
    field("Entries", send_entries),
};
constexpr member receive_message_members[] = {
    field("QueueUrl", string_shape),
    field("AttributeNames", attribute_name_list),
    field("MessageSystemAttributeNames", system_attribute_name_list),  // newer
    field("MessageAttributeNames", message_attribute_name_list),
    field("MaxNumberOfMessages", integer_shape),
    field("VisibilityTimeout", integer_shape),
    field("WaitTimeSeconds", integer_shape),
    field("ReceiveRequestAttemptId", string_shape),
};
constexpr member delete_message_members[] = {
    field("QueueUrl", string_shape),
    field("ReceiptHandle", string_shape),
};
constexpr member delete_entry_members[] = {
    field("Id", string_shape),
    field("ReceiptHandle", string_shape),
};
constexpr shape delete_entry = structure(delete_entry_members);
constexpr shape delete_entries = list_of(delete_entry, "DeleteMessageBatchRequestEntry");
constexpr member delete_message_batch_members[] = {
    field("QueueUrl", string_shape),
    field("Entries", delete_entries),
};
constexpr member change_visibility_members[] = {
    field("QueueUrl", string_shape),
    field("ReceiptHandle", string_shape),
    field("VisibilityTimeout", integer_shape),
};
constexpr member change_visibility_entry_members[] = {
    field("Id", string_shape),
    field("ReceiptHandle", string_shape),
    field("VisibilityTimeout", integer_shape),
};
constexpr shape change_visibility_entry = structure(change_visibility_entry_members);
constexpr shape change_visibility_entries =
    list_of(change_visibility_entry, "ChangeMessageVisibilityBatchRequestEntry");
constexpr member change_visibility_batch_members[] = {
    field("QueueUrl", string_shape),
    field("Entries", change_visibility_entries),
};
constexpr member list_dead_letter_source_queues_members[] = {
    field("QueueUrl", string_shape),
    field("NextToken", string_shape),
    field("MaxResults", integer_shape),
};
constexpr member add_permission_members[] = {
    field("QueueUrl", string_shape),
    field("Label", string_shape),
    field("AWSAccountIds", account_id_list),
    field("Actions", action_name_list),
};
constexpr member remove_permission_members[] = {
    field("QueueUrl", string_shape),
    field("Label", string_shape),
};
constexpr member start_message_move_task_members[] = {
    // newer
    field("SourceArn", string_shape),
    field("DestinationArn", string_shape),
    field("MaxNumberOfMessagesPerSecond", integer_shape),
};
constexpr member cancel_message_move_task_members[] = {field("TaskHandle", string_shape)};
constexpr member list_message_move_tasks_members[] = {
    // newer
    field("SourceArn", string_shape),
    field("MaxResults", integer_shape),
};

// --- Result shapes.
constexpr member queue_url_result_members[] = {field("QueueUrl", string_shape)};
constexpr member list_queues_result_members[] = {
    field("QueueUrls", queue_url_list),
    field("NextToken", string_shape),
};
constexpr member attributes_result_members[] = {field("Attributes", "Attribute", string_map)};
constexpr member tags_result_members[] = {field("Tags", "Tag", tag_map)};
constexpr member send_message_result_members[] = {
    field("MD5OfMessageBody", string_shape),
    field("MD5OfMessageAttributes", string_shape),
    field("MD5OfMessageSystemAttributes", string_shape),
    field("MessageId", string_shape),
    field("SequenceNumber", string_shape),
};
constexpr member send_result_entry_members[] = {
    field("Id", string_shape),
    field("MessageId", string_shape),
    field("MD5OfMessageBody", string_shape),
    field("MD5OfMessageAttributes", string_shape),
    field("MD5OfMessageSystemAttributes", string_shape),
    field("SequenceNumber", string_shape),
};
constexpr member batch_error_entry_members[] = {
    field("Id", string_shape),
    field("SenderFault", boolean_shape),
    field("Code", string_shape),
    field("Message", string_shape),
};
constexpr shape batch_error_entry = structure(batch_error_entry_members);
constexpr shape batch_errors = list_of(batch_error_entry, "BatchResultErrorEntry");
constexpr shape send_result_entry = structure(send_result_entry_members);
constexpr shape send_result_entries = list_of(send_result_entry, "SendMessageBatchResultEntry");
constexpr member send_message_batch_result_members[] = {
    field("Successful", send_result_entries),
    field("Failed", batch_errors),
};
constexpr member id_entry_members[] = {field("Id", string_shape)};
constexpr shape id_entry = structure(id_entry_members);
constexpr shape delete_result_entries = list_of(id_entry, "DeleteMessageBatchResultEntry");
constexpr member delete_message_batch_result_members[] = {
    field("Successful", delete_result_entries),
    field("Failed", batch_errors),
};
constexpr shape change_visibility_result_entries =
    list_of(id_entry, "ChangeMessageVisibilityBatchResultEntry");
constexpr member change_visibility_batch_result_members[] = {
    field("Successful", change_visibility_result_entries),
    field("Failed", batch_errors),
};
constexpr member message_members[] = {
    field("MessageId", string_shape),
    field("ReceiptHandle", string_shape),
    field("MD5OfBody", string_shape),
    field("Body", string_shape),
    field("Attributes", "Attribute", string_map),
    field("MD5OfMessageAttributes", string_shape),
    field("MessageAttributes", "MessageAttribute", attribute_value_map),
};
constexpr shape message_shape = structure(message_members);
constexpr shape message_list = list_of(message_shape, "Message");
constexpr member receive_message_result_members[] = {field("Messages", message_list)};
constexpr member list_dead_letter_source_queues_result_members[] = {
    field("queueUrls", queue_url_list),
    field("NextToken", string_shape),
};

struct action_spec {
  std::string_view name;
  shape input;
  std::optional<shape> output;  // nullopt: no output shape, no <{Action}Result> element
};

constexpr std::optional<shape> no_output;

constexpr action_spec actions[] = {
    {"CreateQueue", structure(create_queue_members), structure(queue_url_result_members)},
    {"GetQueueUrl", structure(get_queue_url_members), structure(queue_url_result_members)},
    {"ListQueues", structure(list_queues_members), structure(list_queues_result_members)},
    {"DeleteQueue", queue_url_only, no_output},
    {"GetQueueAttributes", structure(get_queue_attributes_members),
     structure(attributes_result_members)},
    {"SetQueueAttributes", structure(set_queue_attributes_members), no_output},
    {"PurgeQueue", queue_url_only, no_output},
    {"TagQueue", structure(tag_queue_members), no_output},
    {"UntagQueue", structure(untag_queue_members), no_output},
    {"ListQueueTags", queue_url_only, structure(tags_result_members)},
    {"SendMessage", structure(send_message_members), structure(send_message_result_members)},
    {"SendMessageBatch", structure(send_message_batch_members),
     structure(send_message_batch_result_members)},
    {"ReceiveMessage", structure(receive_message_members),
     structure(receive_message_result_members)},
    {"DeleteMessage", structure(delete_message_members), no_output},
    {"DeleteMessageBatch", structure(delete_message_batch_members),
     structure(delete_message_batch_result_members)},
    {"ChangeMessageVisibility", structure(change_visibility_members), no_output},
    {"ChangeMessageVisibilityBatch", structure(change_visibility_batch_members),
     structure(change_visibility_batch_result_members)},
    {"ListDeadLetterSourceQueues", structure(list_dead_letter_source_queues_members),
     structure(list_dead_letter_source_queues_result_members)},
    {"AddPermission", structure(add_permission_members), no_output},
    {"RemovePermission", structure(remove_permission_members), no_output},
    {"StartMessageMoveTask", structure(start_message_move_task_members), no_output},
    {"CancelMessageMoveTask", structure(cancel_message_move_task_members), no_output},
    {"ListMessageMoveTasks", structure(list_message_move_tasks_members), no_output},
};

const action_spec* find_action(std::string_view name) {
  for (const action_spec& a : actions) {
    if (a.name == name) return &a;
  }
  return nullptr;
}

// ---------------------------------------------------------------------------------------------
// UTF-8 and text helpers.

constexpr char32_t invalid_code_point = 0xFFFFFFFF;

// Length of the UTF-8 sequence a byte starts; 0 for a continuation or invalid byte.
std::size_t sequence_length(unsigned char lead) {
  if (lead < 0x80) return 1;
  if (lead < 0xC0) return 0;
  if (lead < 0xE0) return 2;
  if (lead < 0xF0) return 3;
  if (lead < 0xF8) return 4;
  return 0;
}

// Decodes the UTF-8 sequence at s[i] and advances i past it. A malformed, truncated, overlong or
// surrogate sequence yields invalid_code_point and advances one byte.
char32_t next_code_point(std::string_view s, std::size_t& i) {
  const auto lead = static_cast<unsigned char>(s[i]);
  const std::size_t length = sequence_length(lead);
  if (length == 0 || i + length > s.size()) {
    ++i;
    return invalid_code_point;
  }
  constexpr char32_t lead_mask[] = {0, 0x7F, 0x1F, 0x0F, 0x07};
  constexpr char32_t minimum[] = {0, 0, 0x80, 0x800, 0x10000};
  char32_t c = lead & lead_mask[length];
  for (std::size_t k = 1; k < length; ++k) {
    const auto b = static_cast<unsigned char>(s[i + k]);
    if ((b & 0xC0) != 0x80) {
      ++i;
      return invalid_code_point;
    }
    c = (c << 6) | (b & 0x3F);
  }
  if (c < minimum[length] || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF)) {
    ++i;
    return invalid_code_point;
  }
  i += length;
  return c;
}

bool is_valid_utf8(std::string_view s) {
  for (std::size_t i = 0; i < s.size();) {
    if (next_code_point(s, i) == invalid_code_point) return false;
  }
  return true;
}

// XML 1.0 "Char"; everything else cannot appear in a document, not even as a reference.
bool is_xml_char(char32_t c) {
  return c == 0x9 || c == 0xA || c == 0xD || (c >= 0x20 && c <= 0xD7FF) ||
         (c >= 0xE000 && c <= 0xFFFD) || (c >= 0x10000 && c <= 0x10FFFF);
}

// The reference that must stand for `c` in character data, or "" if `c` stands for itself. CR
// is one because parsers turn a literal CR (and CR LF) into LF; quotes for good measure.
std::string_view xml_reference(char32_t c) {
  switch (c) {
    case '&':
      return "&amp;";
    case '<':
      return "&lt;";
    case '>':
      return "&gt;";
    case '"':
      return "&quot;";
    case '\'':
      return "&apos;";
    case '\r':
      return "&#xD;";
    default:
      return {};
  }
}

// Appends `s` as XML character data that parsers read back as `s`.
void append_xml_text(std::string& out, std::string_view s) {
  for (std::size_t i = 0; i < s.size();) {
    const std::size_t start = i;
    const char32_t c = next_code_point(s, i);
    if (!is_xml_char(c)) {
      out += "\xEF\xBF\xBD";  // U+FFFD
    } else if (const std::string_view reference = xml_reference(c); !reference.empty()) {
      out += reference;
    } else {
      out.append(s.substr(start, i - start));
    }
  }
}

// Client input echoed in an error message: at most 64 bytes, cut at a character boundary.
std::string excerpt(std::string_view s) {
  constexpr std::size_t limit = 64;
  if (s.size() <= limit) return std::string(s);
  std::size_t n = limit;
  while (n > 0 && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80) --n;
  return std::string(s.substr(0, n)) + "...";
}

query_error make_error(query_errc code, std::string message) { return {code, std::move(message)}; }

query_error missing_parameter(std::string_view name) {
  return make_error(query_errc::missing_parameter,
                    fmt::format("The request must contain the parameter {}.", name));
}

std::string join(std::string_view prefix, std::string_view name) {
  return prefix.empty() ? std::string(name) : fmt::format("{}.{}", prefix, name);
}

// ---------------------------------------------------------------------------------------------
// Form decoding.

// Percent-decodes one name or value; `what` describes it for the error message.
query_result<std::string> decode_form_component(std::string_view raw, std::string_view what) {
  auto pct = boost::urls::make_pct_string_view(raw);
  if (!pct) {
    return make_error(query_errc::malformed_query_string,
                      fmt::format("The {} has a '%' not followed by two hex digits.", what));
  }
  const boost::urls::encoding_opts form_encoding(/*space_as_plus_=*/true);
  std::string decoded = pct->decode(form_encoding);
  if (!is_valid_utf8(decoded)) {
    return make_error(query_errc::malformed_query_string,
                      fmt::format("The {} is not valid UTF-8 once percent-decoded.", what));
  }
  return decoded;
}

query_result<std::pair<std::string, std::string>> decode_form_pair(std::string_view pair) {
  const std::size_t eq = pair.find('=');
  const std::string_view raw_name = pair.substr(0, eq);
  const std::string_view raw_value = eq == pair.npos ? std::string_view() : pair.substr(eq + 1);
  SQSRELAY_TRY(
      name, decode_form_component(raw_name, fmt::format("parameter name {}", excerpt(raw_name))));
  SQSRELAY_TRY(
      value, decode_form_component(raw_value, fmt::format("value of parameter {}", excerpt(name))));
  return std::pair{std::move(name), std::move(value)};
}

// ---------------------------------------------------------------------------------------------
// Query parameters -> JSON request.

// The parameters as a tree over their dotted names: "A.1.Name" is root["A"]["1"]["Name"].
// Keys and values point into the query_params, which outlive the tree.
struct param_node {
  const std::string* value = nullptr;  // last value given for exactly this name
  int times_given = 0;
  std::map<std::string_view, param_node, std::less<>> children;
};

param_node build_tree(const query_params& params) {
  param_node root;
  for (const auto& [name, value] : params) {
    param_node* node = &root;
    std::string_view rest = name;
    for (std::size_t dot = rest.find('.');; dot = rest.find('.')) {
      node = &node->children[rest.substr(0, dot)];
      if (dot == rest.npos) break;
      rest.remove_prefix(dot + 1);
    }
    node->value = &value;
    ++node->times_given;
  }
  return root;
}

const param_node* child(const param_node& node, std::string_view name) {
  auto it = node.children.find(name);
  return it == node.children.end() ? nullptr : &it->second;
}

// A list index as botocore writes it: 1, 2, ... without sign or leading zero. Huge indexes map
// to SIZE_MAX, which is always a gap.
std::optional<std::size_t> parse_index(std::string_view s) {
  if (s.empty() || s[0] == '0') return std::nullopt;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
  }
  std::size_t index = SIZE_MAX;
  if (s.size() <= 9) std::from_chars(s.data(), s.data() + s.size(), index);
  return index;
}

// The children of a list or map node ordered by index; they must be numbered 1..N.
query_result<std::vector<const param_node*>> numbered_children(const param_node& node,
                                                               std::string_view path) {
  std::vector<const param_node*> ordered(node.children.size(), nullptr);
  for (const auto& [name, entry] : node.children) {
    const std::optional<std::size_t> index = parse_index(name);
    if (!index) {
      return make_error(query_errc::malformed_query_string,
                        fmt::format("Parameter {}.{} has an invalid list index; indexes are 1, "
                                    "2, 3, ...",
                                    path, excerpt(name)));
    }
    if (*index <= ordered.size()) ordered[*index - 1] = &entry;
  }
  for (std::size_t i = 0; i < ordered.size(); ++i) {
    if (ordered[i] == nullptr) {
      return make_error(query_errc::malformed_query_string,
                        fmt::format("Parameter {}.{} is missing; list entries must be numbered "
                                    "1, 2, 3, ... without gaps.",
                                    path, i + 1));
    }
  }
  return ordered;
}

std::optional<std::int32_t> parse_int32(std::string_view s) {
  std::int32_t v = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
  return v;
}

query_error invalid_value(std::string_view path, std::string_view value, std::string_view why) {
  return make_error(
      query_errc::invalid_parameter_value,
      fmt::format("Value {} for parameter {} is invalid. Reason: {}", excerpt(value), path, why));
}

query_result<json::value> decode_scalar(kind type, const param_node& node, std::string_view path) {
  if (node.value == nullptr) return missing_parameter(path);
  if (node.times_given > 1) {
    return make_error(query_errc::malformed_query_string,
                      fmt::format("Parameter {} is given more than once.", path));
  }
  const std::string& text = *node.value;
  switch (type) {
    case kind::integer:
      if (auto v = parse_int32(text)) return json::value(*v);
      return invalid_value(path, text, "must be an integer from -2147483648 to 2147483647.");
    case kind::boolean:
      if (text == "true" || text == "false") return json::value(text == "true");
      return invalid_value(path, text, "must be true or false.");
    default:
      return json::value(json::string(text));
  }
}

using decoded_member = query_result<std::optional<json::value>>;  // nullopt: not given

query_result<json::object> decode_structure(const shape& s, const param_node& node,
                                            std::string_view path);

query_result<json::value> decode_value(const shape& s, const param_node& node,
                                       std::string_view path) {
  if (s.type != kind::structure) return decode_scalar(s.type, node, path);
  SQSRELAY_TRY(object, decode_structure(s, node, path));
  return json::value(std::move(object));
}

decoded_member decode_list(const member& m, const param_node& node, std::string_view path) {
  const shape& list = *m.type;
  const param_node* items = child(node, list.item_name);
  // The unindexed form of a one-item list, as AWS's own examples write it
  // ("AttributeName=All"); botocore always numbers items.
  if (items != nullptr && items->children.empty() && items->value != nullptr &&
      !items->value->empty() && list.item->type != kind::structure) {
    SQSRELAY_TRY(item, decode_value(*list.item, *items, join(path, list.item_name)));
    json::array out;
    out.push_back(std::move(item));
    return json::value(std::move(out));
  }
  if (items == nullptr || items->children.empty()) {
    // botocore sends an empty list as "<member name>=".
    const param_node* marker = child(node, m.query_name);
    if (marker != nullptr && marker->value != nullptr && marker->value->empty()) {
      return json::value(json::array());
    }
    return std::nullopt;
  }
  const std::string items_path = join(path, list.item_name);
  SQSRELAY_TRY(ordered, numbered_children(*items, items_path));
  json::array out;
  for (std::size_t i = 0; i < ordered.size(); ++i) {
    SQSRELAY_TRY(item,
                 decode_value(*list.item, *ordered[i], join(items_path, std::to_string(i + 1))));
    out.push_back(std::move(item));
  }
  return json::value(std::move(out));
}

// Adds entry `<path>.<key_name>` -> `<path>.Value` of a flattened map to `out`.
query_result<void> decode_map_entry(const shape& map, const param_node& entry,
                                    std::string_view path, json::object& out) {
  const std::string key_path = join(path, map.key_name);
  const param_node* key = child(entry, map.key_name);
  if (key == nullptr) return missing_parameter(key_path);
  SQSRELAY_TRY(name, decode_scalar(kind::string, *key, key_path));
  const param_node* value = child(entry, map.value_name);
  if (value == nullptr) return missing_parameter(join(path, map.value_name));
  SQSRELAY_TRY(decoded, decode_value(*map.item, *value, join(path, map.value_name)));
  if (out.contains(name.get_string())) {
    return invalid_value(key_path, name.get_string(), "the name is given more than once.");
  }
  out.emplace(name.get_string(), std::move(decoded));
  return {};
}

decoded_member decode_map(const member& m, const param_node& node, std::string_view path) {
  const param_node* entries = child(node, m.query_name);
  if (entries == nullptr || entries->children.empty()) return std::nullopt;
  const std::string entries_path = join(path, m.query_name);
  json::object out;
  // The unindexed form of a one-entry map, as AWS's examples write it ("Tag.Key=k&Tag.Value=v",
  // "Attribute.Name=n&Attribute.Value=v"); botocore always numbers entries.
  const std::size_t named = (child(*entries, m.type->key_name) != nullptr ? 1 : 0) +
                            (child(*entries, m.type->value_name) != nullptr ? 1 : 0);
  if (named > 0 && named == entries->children.size()) {
    auto added = decode_map_entry(*m.type, *entries, entries_path, out);
    if (!added) return added.error();
    return json::value(std::move(out));
  }
  SQSRELAY_TRY(ordered, numbered_children(*entries, entries_path));
  for (std::size_t i = 0; i < ordered.size(); ++i) {
    auto added =
        decode_map_entry(*m.type, *ordered[i], join(entries_path, std::to_string(i + 1)), out);
    if (!added) return added.error();
  }
  return json::value(std::move(out));
}

decoded_member decode_member(const member& m, const param_node& node, std::string_view path) {
  if (m.type->type == kind::list) return decode_list(m, node, path);
  if (m.type->type == kind::map) return decode_map(m, node, path);
  const param_node* c = child(node, m.query_name);
  if (c == nullptr || (c->value == nullptr && m.type->type != kind::structure)) {
    return std::nullopt;
  }
  SQSRELAY_TRY(value, decode_value(*m.type, *c, join(path, m.query_name)));
  return std::optional<json::value>(std::move(value));
}

query_result<json::object> decode_structure(const shape& s, const param_node& node,
                                            std::string_view path) {
  json::object out;
  for (const member& m : s.members) {
    SQSRELAY_TRY(value, decode_member(m, node, path));
    if (value) out.emplace(m.json_name, std::move(*value));
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// JSON result -> XML.

void open_tag(std::string& out, std::string_view name) {
  out += '<';
  out += name;
  out += '>';
}

void close_tag(std::string& out, std::string_view name) {
  out += "</";
  out += name;
  out += '>';
}

void text_element(std::string& out, std::string_view name, std::string_view text) {
  open_tag(out, name);
  append_xml_text(out, text);
  close_tag(out, name);
}

// Whether `v` has the JSON type the model expects; anything else is left out of the XML.
bool fits(const shape& s, const json::value& v) {
  switch (s.type) {
    case kind::structure:
    case kind::map:
      return v.is_object();
    case kind::list:
      return v.is_array();
    default:
      return v.is_string() || v.is_number() || v.is_bool();
  }
}

void write_scalar(std::string& out, const json::value& v) {
  if (v.is_string()) {
    append_xml_text(out, v.get_string());
  } else if (v.is_bool()) {
    out += v.get_bool() ? "true" : "false";
  } else {
    out += json::serialize(v);  // a number
  }
}

void write_structure(std::string& out, const shape& s, const json::object& object);

void write_value(std::string& out, std::string_view name, const shape& s, const json::value& v) {
  open_tag(out, name);
  if (s.type == kind::structure) {
    write_structure(out, s, v.get_object());
  } else {
    write_scalar(out, v);
  }
  close_tag(out, name);
}

void write_list(std::string& out, const shape& list, const json::array& items) {
  for (const json::value& item : items) {
    if (fits(*list.item, item)) write_value(out, list.item_name, *list.item, item);
  }
}

void write_map(std::string& out, std::string_view name, const shape& map,
               const json::object& entries) {
  for (const auto& entry : entries) {
    if (!fits(*map.item, entry.value())) continue;
    open_tag(out, name);
    text_element(out, map.key_name, entry.key());
    write_value(out, map.value_name, *map.item, entry.value());
    close_tag(out, name);
  }
}

void write_structure(std::string& out, const shape& s, const json::object& object) {
  for (const member& m : s.members) {
    const json::value* v = object.if_contains(m.json_name);
    if (v == nullptr || !fits(*m.type, *v)) continue;
    if (m.type->type == kind::list) {
      write_list(out, *m.type, v->get_array());
    } else if (m.type->type == kind::map) {
      write_map(out, m.query_name, *m.type, v->get_object());
    } else {
      write_value(out, m.query_name, *m.type, *v);
    }
  }
}

// The root element's name: the action if known, else its ASCII letters and digits, so that a
// client's bogus Action can never break the document.
std::string response_element(std::string_view action) {
  std::string name;
  for (char c : action) {
    if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')) name += c;
  }
  return name + "Response";
}

// error_category's destructor is protected and non-virtual by design (categories are never
// deleted through a base pointer), which -Wnon-virtual-dtor cannot tell.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wnon-virtual-dtor"
class query_category_impl final : public boost::system::error_category {
 public:
  const char* name() const noexcept override { return "sqsrelay.sqs.query"; }
  std::string message(int ev) const override {
    return std::string(aws_error_code(static_cast<query_errc>(ev)));
  }
};
#pragma GCC diagnostic pop

}  // namespace

std::string_view aws_error_code(query_errc e) noexcept {
  switch (e) {
    case query_errc::malformed_query_string:
      return "MalformedQueryString";
    case query_errc::invalid_parameter_value:
      return "InvalidParameterValue";
    case query_errc::missing_parameter:
      return "MissingParameter";
    case query_errc::missing_action:
      return "MissingAction";
    case query_errc::invalid_action:
      return "InvalidAction";
  }
  return "InternalFailure";
}

const boost::system::error_category& query_category() noexcept {
  static const query_category_impl category;
  return category;
}

error_code make_error_code(query_errc e) noexcept {
  return error_code(static_cast<int>(e), query_category());
}

void throw_exception_from_error(const query_error& e, const boost::source_location& loc) {
  boost::throw_exception(boost::system::system_error(make_error_code(e.code), e.message), loc);
}

query_result<query_params> parse_form(std::string_view body) {
  query_params params;
  while (!body.empty()) {
    const std::size_t amp = body.find('&');
    const std::string_view pair = body.substr(0, amp);
    body = amp == body.npos ? std::string_view() : body.substr(amp + 1);
    if (pair.empty()) continue;
    SQSRELAY_TRY(param, decode_form_pair(pair));
    params.push_back(std::move(param));
  }
  return params;
}

std::string_view query_action(const query_params& params) noexcept {
  for (const auto& [name, value] : params) {
    if (name == "Action") return value;
  }
  return {};
}

query_result<boost::json::object> query_to_json_request(std::string_view action,
                                                        const query_params& params) {
  if (action.empty()) {
    return make_error(query_errc::missing_action, "The request must contain the parameter Action.");
  }
  const action_spec* spec = find_action(action);
  if (spec == nullptr) {
    return make_error(
        query_errc::invalid_action,
        fmt::format("The action {} is not valid for this endpoint.", excerpt(action)));
  }
  return decode_structure(spec->input, build_tree(params), "");
}

std::string json_result_to_query_xml(std::string_view action, const boost::json::object& result,
                                     std::string_view request_id) {
  const action_spec* spec = find_action(action);
  const std::string root = response_element(action);
  std::string out;
  out.reserve(256);
  out += fmt::format("<{} xmlns=\"{}\">", root, xml_namespace);
  if (spec != nullptr && spec->output) {
    const std::string wrapper = fmt::format("{}Result", spec->name);
    open_tag(out, wrapper);
    write_structure(out, *spec->output, result);
    close_tag(out, wrapper);
  }
  out += "<ResponseMetadata>";
  text_element(out, "RequestId", request_id);
  out += "</ResponseMetadata>";
  close_tag(out, root);
  return out;
}

std::string query_error_xml(bool sender_fault, std::string_view code, std::string_view message,
                            std::string_view request_id) {
  std::string out = fmt::format("<ErrorResponse xmlns=\"{}\"><Error>", xml_namespace);
  text_element(out, "Type", sender_fault ? "Sender" : "Receiver");
  text_element(out, "Code", code);
  text_element(out, "Message", message);
  out += "<Detail/></Error>";
  text_element(out, "RequestId", request_id);
  out += "</ErrorResponse>";
  return out;
}

}  // namespace sqsrelay::sqs
