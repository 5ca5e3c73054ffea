// Runs a root-only adapter test body in a forked child, where it may unshare its own
// network namespace: nothing it does reaches the machine's own namespace, and whatever
// it leaves behind dies with the child. The body returns 0 (pass), kSkip (the sandbox
// does not allow unshare) or anything else (fail, with messages on stderr).
#pragma once

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>

namespace mpathd::test {

inline constexpr int kSkip = 77;

template <typename Body>
void run_in_child(Body body) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to create network namespaces";
  std::fflush(nullptr);
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    int rc = 1;
    try {
      rc = body();
    } catch (...) {
      std::fprintf(stderr, "exception in the namespace child\n");
    }
    std::fflush(nullptr);
    _exit(rc);
  }
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status)) << "child killed by signal " << WTERMSIG(status);
  if (WEXITSTATUS(status) == kSkip) GTEST_SKIP() << "unshare(CLONE_NEWNET) not permitted";
  EXPECT_EQ(WEXITSTATUS(status), 0) << "see the child's messages above";
}

}  // namespace mpathd::test
