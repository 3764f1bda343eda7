#include "scheduler/job_validation.h"

#include <openssl/sha.h>

#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"

namespace peergrid::scheduler {

std::string Sha256Hex(const std::string& data) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(data.data()), data.size(),
         digest);
  return absl::BytesToHexString(
      absl::string_view(reinterpret_cast<const char*>(digest), sizeof(digest)));
}

void NormalizeJob(v1::Job& job) {
  bool any_index = false;
  for (const v1::Task& task : job.tasks()) any_index |= task.index() != 0;
  const v1::TaskDefaults& defaults = job.defaults();
  for (int i = 0; i < job.tasks_size(); ++i) {
    v1::Task& task = *job.mutable_tasks(i);
    if (!any_index) task.set_index(static_cast<uint64_t>(i));
    if (task.cpus() == 0)
      task.set_cpus(defaults.cpus() > 0 ? defaults.cpus() : 1);
    if (task.timeout_ms() == 0) task.set_timeout_ms(defaults.timeout_ms());
  }
}

absl::Status ValidateJob(const v1::Job& job, const JobLimits& limits) {
  if (job.tasks_size() == 0) {
    return absl::InvalidArgumentError("the job has no tasks");
  }
  if (static_cast<size_t>(job.tasks_size()) > limits.max_tasks) {
    return absl::InvalidArgumentError(
        absl::StrCat("the job has ", job.tasks_size(), " tasks; at most ",
                     limits.max_tasks, " are allowed"));
  }
  if (job.name().size() > limits.max_name_bytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("the job's name is ", job.name().size(),
                     " bytes long; at most ", limits.max_name_bytes,
                     " are allowed"));
  }
  if (job.defaults().timeout_ms() < 0 ||
      job.defaults().timeout_ms() > limits.max_timeout_ms) {
    return absl::InvalidArgumentError(absl::StrCat(
        "the job's default timeout of ", job.defaults().timeout_ms(),
        " ms is out of range (0 to ", limits.max_timeout_ms, ")"));
  }
  absl::flat_hash_set<std::string> blobs;
  for (const v1::Blob& blob : job.blobs()) {
    const std::string actual = Sha256Hex(blob.data());
    if (actual != blob.sha256()) {
      return absl::InvalidArgumentError(
          absl::StrCat("blob '", blob.sha256(),
                       "' does not match its content (SHA-256 ", actual, ")"));
    }
    blobs.insert(blob.sha256());
  }
  const auto blob_known = [&](const std::string& sha256) {
    return blobs.contains(sha256);
  };

  const uint64_t task_count = static_cast<uint64_t>(job.tasks_size());
  std::vector<bool> seen(task_count, false);
  for (const v1::Task& task : job.tasks()) {
    const std::string where = absl::StrCat("task ", task.index(), ": ");
    if (task.index() >= task_count) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, "index out of range: a job of ", task_count,
                       " tasks numbers them 0 to ", task_count - 1));
    }
    if (seen[task.index()]) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, "index used by another task"));
    }
    seen[task.index()] = true;
    if (task.cpus() > limits.max_task_cpus) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, "asks for ", task.cpus(), " cpus; at most ",
                       limits.max_task_cpus));
    }
    if (task.memory_bytes() > limits.max_task_memory_bytes) {
      return absl::InvalidArgumentError(absl::StrCat(
          where, "asks for ", task.memory_bytes(), " bytes of memory; at most ",
          limits.max_task_memory_bytes));
    }
    if (task.timeout_ms() < 0 || task.timeout_ms() > limits.max_timeout_ms) {
      return absl::InvalidArgumentError(absl::StrCat(
          where, "timeout of ", task.timeout_ms(), " ms is out of range (0 to ",
          limits.max_timeout_ms, ")"));
    }
    switch (task.kind_case()) {
      case v1::Task::kExec: {
        const v1::ExecSpec& exec = task.exec();
        if (exec.argv_size() == 0 || exec.argv(0).empty()) {
          return absl::InvalidArgumentError(
              absl::StrCat(where, "the command is empty"));
        }
        for (const v1::InputFile& input : exec.inputs()) {
          if (input.path().empty() || input.path()[0] == '/' ||
              input.path().find("..") != std::string::npos) {
            return absl::InvalidArgumentError(absl::StrCat(
                where, "input path '", input.path(),
                "' must be relative and stay inside the task's directory"));
          }
          if (!blob_known(input.blob_sha256())) {
            return absl::InvalidArgumentError(absl::StrCat(
                where, "input '", input.path(), "' names blob '",
                input.blob_sha256(), "', which the job does not carry"));
          }
        }
        for (const std::string& output : exec.output_files()) {
          if (output.empty() || output[0] == '/' ||
              output.find("..") != std::string::npos) {
            return absl::InvalidArgumentError(absl::StrCat(
                where, "output path '", output,
                "' must be relative and stay inside the task's directory"));
          }
        }
        break;
      }
      case v1::Task::kKernel: {
        const v1::KernelSpec& kernel = task.kernel();
        if (limits.kernel_known && !limits.kernel_known(kernel.name())) {
          return absl::InvalidArgumentError(
              absl::StrCat(where, "unknown kernel '", kernel.name(), "'"));
        }
        if (!kernel.input_blob_sha256().empty() &&
            !blob_known(kernel.input_blob_sha256())) {
          return absl::InvalidArgumentError(
              absl::StrCat(where, "names blob '", kernel.input_blob_sha256(),
                           "', which the job does not carry"));
        }
        break;
      }
      default:
        return absl::InvalidArgumentError(
            absl::StrCat(where, "has neither a command (exec) nor a kernel"));
    }
  }
  return absl::OkStatus();
}

}  // namespace peergrid::scheduler
