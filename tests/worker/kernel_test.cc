#include "worker/kernel.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "tests/worker/test_util.h"

namespace peergrid::worker {
namespace {

absl::StatusOr<std::string> Call(const KernelRegistry& r,
                                 const std::string& name,
                                 const std::string& arg,
                                 const std::string& input = "",
                                 const std::atomic<bool>* cancel = nullptr) {
  const KernelFn* fn = r.Find(name);
  if (fn == nullptr) return absl::NotFoundError(name);
  KernelContext ctx(arg, input, cancel, absl::InfiniteFuture());
  return (*fn)(ctx);
}

TEST(KernelTest, BuiltinsAreRegistered) {
  auto r = KernelRegistry::WithBuiltins();
  EXPECT_EQ(r->Names(), (std::vector<std::string>{"echo", "noop", "primes",
                                                  "sha256", "sleep", "spin"}));
  EXPECT_EQ(r->Find("nope"), nullptr);
}

TEST(KernelTest, NoopAndEcho) {
  auto r = KernelRegistry::WithBuiltins();
  EXPECT_EQ(*Call(*r, "noop", "ignored"), "");
  EXPECT_EQ(*Call(*r, "echo", std::string("a\0b", 3)), std::string("a\0b", 3));
}

TEST(KernelTest, SleepWaitsAndStopsOnCancel) {
  auto r = KernelRegistry::WithBuiltins();
  absl::Time t0 = absl::Now();
  ASSERT_TRUE(Call(*r, "sleep", "30").ok());
  EXPECT_GE(absl::Now() - t0, absl::Milliseconds(30));
  EXPECT_FALSE(Call(*r, "sleep", "abc").ok());
  EXPECT_FALSE(Call(*r, "sleep", "-5").ok());

  std::atomic<bool> cancel{false};
  std::thread stopper([&] {
    absl::SleepFor(absl::Milliseconds(20));  // The event under test.
    cancel = true;
  });
  t0 = absl::Now();
  auto out = Call(*r, "sleep", "60000", "", &cancel);
  stopper.join();
  EXPECT_EQ(out.status().code(), absl::StatusCode::kCancelled);
  EXPECT_LT(absl::Now() - t0, absl::Seconds(1));
}

TEST(KernelTest, SpinBurnsCpu) {
  auto r = KernelRegistry::WithBuiltins();
  const clock_t c0 = clock();
  ASSERT_TRUE(Call(*r, "spin", "50").ok());
  EXPECT_GE(static_cast<double>(clock() - c0) / CLOCKS_PER_SEC, 0.049);
  EXPECT_FALSE(Call(*r, "spin", "x").ok());
}

TEST(KernelTest, Sha256OfArgumentAndOfInputBlob) {
  auto r = KernelRegistry::WithBuiltins();
  EXPECT_EQ(*Call(*r, "sha256", "abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(*Call(*r, "sha256", ""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  testing::TempDir dir;
  const std::string path = dir.Write("blob", "abc");
  EXPECT_EQ(*Call(*r, "sha256", "ignored", path), Sha256Hex("abc"));
  EXPECT_FALSE(Call(*r, "sha256", "", dir.path() + "/missing").ok());
}

TEST(KernelTest, PrimesCountsInclusiveRange) {
  auto r = KernelRegistry::WithBuiltins();
  EXPECT_EQ(*Call(*r, "primes", "10"), "4");
  EXPECT_EQ(*Call(*r, "primes", "1 100"), "25");
  EXPECT_EQ(*Call(*r, "primes", "100 200"), "21");
  EXPECT_EQ(*Call(*r, "primes", "2 2"), "1");
  EXPECT_EQ(*Call(*r, "primes", "0 1"), "0");
  EXPECT_EQ(*Call(*r, "primes", "1000000"), "78498");
  EXPECT_EQ(*Call(*r, "primes", "1000000000 1000100000"), "4832");
  EXPECT_FALSE(Call(*r, "primes", "").ok());
  EXPECT_FALSE(Call(*r, "primes", "5 3").ok());
  EXPECT_FALSE(Call(*r, "primes", "a b").ok());
  EXPECT_FALSE(Call(*r, "primes", "1 2 3").ok());
}

TEST(KernelTest, RegisterRejectsDuplicatesAndEmptyNames) {
  auto r = KernelRegistry::WithBuiltins();
  auto fn = [](const KernelContext&) -> absl::StatusOr<std::string> {
    return std::string("x");
  };
  EXPECT_EQ(r->Register("echo", fn).code(), absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(r->Register("", fn).code(), absl::StatusCode::kInvalidArgument);
  ASSERT_TRUE(r->Register("mine", fn).ok());
  EXPECT_EQ(*Call(*r, "mine", ""), "x");
}

TEST(KernelTest, LoadsExamplePlugin) {
  auto r = KernelRegistry::WithBuiltins();
  ASSERT_TRUE(LoadKernelPlugin(PEERGRID_EXAMPLE_PLUGIN, *r).ok());
  EXPECT_EQ(*Call(*r, "reverse", "abc"), "cba");
  EXPECT_EQ(*Call(*r, "wordcount", " a bb  ccc "), "3");
  // Loading twice registers the same names again: refused, not a crash.
  EXPECT_FALSE(LoadKernelPlugin(PEERGRID_EXAMPLE_PLUGIN, *r).ok());
}

TEST(KernelTest, BadPluginsAreClearErrors) {
  auto r = KernelRegistry::WithBuiltins();
  auto missing = LoadKernelPlugin("/nonexistent/plugin.so", *r);
  EXPECT_EQ(missing.code(), absl::StatusCode::kNotFound);
  EXPECT_NE(missing.message().find("/nonexistent/plugin.so"),
            std::string::npos);
  auto no_symbol = LoadKernelPlugin("libz.so.1", *r);
  EXPECT_EQ(no_symbol.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(no_symbol.message().find(kPluginRegisterSymbol), std::string::npos);
}

}  // namespace
}  // namespace peergrid::worker
