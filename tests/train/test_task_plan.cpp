// The task plan: the five index spaces of the trainer (task, slot, bank row,
// manifest task, sequence) against the manifest they come from, on every rank of
// simulated worlds of 1 to 4 ranks.
#include <gtest/gtest.h>

#include <set>

#include "core/error.h"
#include "train/task_plan.h"
#include "train_fixture.h"

namespace bora {
namespace {

using train_test::fortunes_dataset;

TEST(TaskPlan, EveryTaskOnExactlyOneRankAndTheMapsInvertEachOther) {
  const Manifest m = Manifest::read(fortunes_dataset());
  ASSERT_EQ(m.tasks.size(), 4u);
  for (int world = 1; world <= 4; ++world) {
    std::multiset<int64_t> seen;
    for (int rank = 0; rank < world; ++rank) {
      const TaskPlan plan(m, "data", {}, LikelihoodWeight::Documents, world, rank, /*one_shared_row=*/false);
      ASSERT_EQ(plan.num_tasks(), 4);
      EXPECT_GE(plan.num_local(), 1) << "world " << world << " rank " << rank;
      for (int64_t slot = 0; slot < plan.num_local(); ++slot) {
        const int64_t task = plan.task_of_slot(slot);
        seen.insert(task);
        EXPECT_EQ(plan.owner(task), rank);
        EXPECT_EQ(plan.slot_of_task(task), slot);
        EXPECT_EQ(plan.bank_row(slot), slot);
        if (slot > 0) {
          EXPECT_LT(plan.task_of_slot(slot - 1), task);  // slots follow task order
        }
      }
      for (int64_t task = 0; task < plan.num_tasks(); ++task)
        EXPECT_EQ(plan.slot_of_task(task) >= 0, plan.owner(task) == rank);
      EXPECT_EQ(plan.local_names().size(), size_t(plan.num_local()));
    }
    EXPECT_EQ(seen, (std::multiset<int64_t>{0, 1, 2, 3})) << "world " << world;
  }
}

TEST(TaskPlan, TasksFollowTheManifestWithTheirCountsAndWeights) {
  const Manifest m = Manifest::read(fortunes_dataset());
  // Named out of order: the plan keeps the manifest's order.
  const std::vector<std::string> wanted = {m.tasks[3].name, m.tasks[1].name};
  for (LikelihoodWeight w : {LikelihoodWeight::Documents, LikelihoodWeight::Tokens, LikelihoodWeight::None}) {
    const TaskPlan plan(m, "data", wanted, w, 1, 0, /*one_shared_row=*/true);
    ASSERT_EQ(plan.num_tasks(), 2);
    int64_t docs = 0;
    for (int64_t task = 0; task < 2; ++task) {
      const TaskInfo& info = m.tasks[size_t(plan.manifest_task(task))];
      EXPECT_EQ(plan.manifest_task(task), task == 0 ? 1 : 3);
      EXPECT_EQ(plan.name(task), info.name);
      EXPECT_EQ(plan.train_documents(task), info.split(Split::Train).sequences);
      EXPECT_EQ(plan.train_targets(task), info.split(Split::Train).target_tokens);
      const double want = w == LikelihoodWeight::Documents ? double(info.split(Split::Train).sequences)
                          : w == LikelihoodWeight::Tokens  ? double(info.split(Split::Train).target_tokens)
                                                           : 1.0;
      EXPECT_EQ(plan.weight(task), want);
      EXPECT_EQ(plan.bank_row(task), 0);  // one shared row (tau = inf)
      docs += info.split(Split::Train).sequences;
    }
    EXPECT_EQ(plan.num_bank_rows(), 1);
    EXPECT_EQ(plan.total_train_documents(), docs);
    EXPECT_EQ(plan.steps_per_epoch(16), (docs + 15) / 16);
    EXPECT_EQ(plan.local_manifest_tasks(), (std::vector<int64_t>{1, 3}));
  }
}

TEST(TaskPlan, GatherByTaskAssemblesEverySlotsValue) {
  const Manifest m = Manifest::read(fortunes_dataset());
  LocalCommunicator comm;
  const TaskPlan plan(m, "data", {}, LikelihoodWeight::Documents, 1, 0, false);
  std::vector<double> by_slot;
  for (int64_t slot = 0; slot < plan.num_local(); ++slot) by_slot.push_back(10.0 * double(plan.task_of_slot(slot)));
  EXPECT_EQ(plan.gather_by_task(comm, by_slot), (std::vector<double>{0, 10, 20, 30}));
}

TEST(TaskPlan, BadTaskListsAreOneLineErrors) {
  const Manifest m = Manifest::read(fortunes_dataset());
  try {
    TaskPlan(m, "data/x", {"nosuch"}, LikelihoodWeight::Documents, 1, 0, false);
    FAIL();
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find("task 'nosuch' named in tasks is not in the dataset data/x"), std::string::npos);
  }
  EXPECT_THROW(TaskPlan(m, "d", {m.tasks[0].name, m.tasks[0].name}, LikelihoodWeight::None, 1, 0, false), ConfigError);
}

}  // namespace
}  // namespace bora
