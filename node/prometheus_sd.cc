#include "node/prometheus_sd.h"

#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/json_util.h>

#include <cstdio>
#include <fstream>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "common/log.h"
#include "common/thread_name.h"

namespace peergrid {
namespace {

// Prometheus label names are [a-zA-Z_][a-zA-Z0-9_]*.
std::string LabelName(const std::string& key) {
  std::string name = "peergrid_label_";
  for (char c : key) {
    name += absl::ascii_isalnum(static_cast<unsigned char>(c)) ? c : '_';
  }
  return name;
}

}  // namespace

std::string PrometheusTargets(const std::vector<v1::MemberStatus>& members) {
  google::protobuf::ListValue groups;
  for (const v1::MemberStatus& member : members) {
    const v1::Advertisement& ad = member.advertisement();
    if (ad.metrics_address().empty() ||
        (member.state() != v1::MEMBER_STATE_ALIVE &&
         member.state() != v1::MEMBER_STATE_SUSPECT)) {
      continue;
    }
    google::protobuf::Struct& group =
        *groups.add_values()->mutable_struct_value();
    (*group.mutable_fields())["targets"]
        .mutable_list_value()
        ->add_values()
        ->set_string_value(ad.metrics_address());
    google::protobuf::Struct& labels =
        *(*group.mutable_fields())["labels"].mutable_struct_value();
    (*labels.mutable_fields())["peergrid_node"].set_string_value(ad.name());
    for (const auto& [key, value] : ad.labels()) {
      (*labels.mutable_fields())[LabelName(key)].set_string_value(value);
    }
  }
  std::string json;
  google::protobuf::util::JsonPrintOptions options;
  options.add_whitespace = true;
  (void)google::protobuf::util::MessageToJsonString(groups, &json, options);
  return json;
}

absl::StatusOr<std::unique_ptr<PrometheusSdWriter>> PrometheusSdWriter::Start(
    std::string path, MembersFn members, absl::Duration interval) {
  std::unique_ptr<PrometheusSdWriter> writer(
      new PrometheusSdWriter(std::move(path), std::move(members), interval));
  if (absl::Status written = writer->Refresh(); !written.ok()) return written;
  writer->thread_ = std::thread([w = writer.get()] {
    SetCurrentThreadName("pg-prom-sd");
    w->Run();
  });
  return writer;
}

PrometheusSdWriter::PrometheusSdWriter(std::string path, MembersFn members,
                                       absl::Duration interval)
    : path_(std::move(path)),
      members_(std::move(members)),
      interval_(interval) {}

PrometheusSdWriter::~PrometheusSdWriter() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  if (thread_.joinable()) thread_.join();
}

absl::Status PrometheusSdWriter::Refresh() {
  std::string content = PrometheusTargets(members_());
  if (content == written_) return absl::OkStatus();
  const std::string temporary = path_ + ".tmp";
  {
    std::ofstream out(temporary, std::ios::trunc);
    out << content;
    out.close();
    if (!out) {
      return absl::UnavailableError(
          absl::StrCat("--prometheus-sd-file: cannot write ", temporary));
    }
  }
  // rename() is atomic: Prometheus never reads a half-written file.
  if (std::rename(temporary.c_str(), path_.c_str()) != 0) {
    return absl::UnavailableError(absl::StrCat(
        "--prometheus-sd-file: cannot rename ", temporary, " to ", path_));
  }
  written_ = std::move(content);
  return absl::OkStatus();
}

void PrometheusSdWriter::Run() {
  while (true) {
    {
      absl::MutexLock lock(&mu_);
      mu_.AwaitWithTimeout(absl::Condition(&stopping_), interval_);
      if (stopping_) return;
    }
    if (absl::Status refreshed = Refresh(); !refreshed.ok()) {
      LogWarning("%s", refreshed.message());
    }
  }
}

}  // namespace peergrid
