// The store the decision cores keep their shared state in: its contract, the in-process store, and
// the helpers every policy reaches its state through.
#include <sturdy/state_store.hpp>

#include "support/catch.hpp"
#include "support/rerunning_store.hpp"

#include <memory>
#include <string>
#include <thread>
#include <vector>

namespace {

struct tally {
    int count = 0;
    std::string log;
};

// Adds `n` to the count under `key` and notes `mark`.
void add(sturdy::state_store<tally>& store, std::string_view key, int n, char mark = '+') {
    store.update(key, tally{100, "start:"}, [&](tally& t) {
        t.count += n;
        t.log += mark;
    });
}

tally read(sturdy::state_store<tally>& store, std::string_view key) {
    tally seen;
    store.update(key, tally{100, "start:"}, [&](tally& t) { seen = t; });
    return seen;
}

}  // namespace

TEST_CASE("local store: a new key starts from the initial state, and keeps what each change did", "[store]") {
    sturdy::local_store<tally> store;
    add(store, "a", 1);
    add(store, "a", 2);
    const auto a = read(store, "a");
    CHECK(a.count == 103);
    CHECK(a.log == "start:++");
}

TEST_CASE("local store: keys are apart, also when the last key used changes back and forth", "[store]") {
    sturdy::local_store<tally> store;
    add(store, "a", 1, 'a');
    add(store, "b", 10, 'b');
    add(store, "a", 1, 'a');
    add(store, std::string("b"), 10, 'b');  // a key equal to one seen, not the same characters
    add(store, "", 5, 'e');                 // the empty key is a key like any other
    CHECK(read(store, "a").count == 102);
    CHECK(read(store, "a").log == "start:aa");
    CHECK(read(store, "b").count == 120);
    CHECK(read(store, "b").log == "start:bb");
    CHECK(read(store, "").count == 105);
    CHECK(read(store, "c").count == 100);
}

TEST_CASE("local store: changes to one key from many threads are never lost or interleaved", "[store][concurrency]") {
    sturdy::local_store<tally> store;
    constexpr int threads = 4, each = 5000;
    std::vector<std::thread> workers;
    for (int w = 0; w < threads; ++w)
        workers.emplace_back([&store, w] {
            const std::string key = w % 2 ? "odd" : "even";
            for (int i = 0; i < each; ++i) {
                add(store, "shared", 1);
                add(store, key, 1);
            }
        });
    for (auto& t : workers) t.join();
    CHECK(read(store, "shared").count == 100 + threads * each);
    CHECK(read(store, "shared").log.size() == std::string("start:").size() + threads * each);
    CHECK(read(store, "odd").count == 100 + threads / 2 * each);
    CHECK(read(store, "even").count == 100 + threads / 2 * each);
}

TEST_CASE("rerunning store: each change runs twice, and only the last run counts", "[store]") {
    sturdy_test::rerunning_store<tally> store;
    int runs = 0;
    store.update("k", tally{}, [&](tally& t) {
        ++runs;
        t.count += 1;
    });
    CHECK(runs == 2);
    CHECK(read(store, "k").count == 1);
}

TEST_CASE("stored state: without a store, a policy's state is its own; with one, it is its name's", "[store]") {
    using slot = sturdy::detail::stored_state<tally>;
    const auto count_of = [](const slot& s) { return s.read([](const tally& t) { return t.count; }); };
    const auto bump = [](const slot& s) { s.update([](tally& t) { ++t.count; }); };

    const slot alone_a(nullptr, "x", tally{}), alone_b(nullptr, "x", tally{});
    bump(alone_a);
    CHECK(count_of(alone_a) == 1);
    CHECK(count_of(alone_b) == 0);  // one name, but no store in common

    auto store = std::make_shared<sturdy::local_store<tally>>();
    const slot x1(store, "x", tally{}), x2(store, "x", tally{7, ""}), y(store, "y", tally{});
    bump(x1);
    bump(x2);
    CHECK(count_of(x1) == 2);  // the first to use the key gave its initial state
    CHECK(count_of(x2) == 2);
    CHECK(count_of(y) == 0);
}

TEST_CASE("replayed random: every run of a change sees the same draws, and new draws come from the source", "[store]") {
    struct counting_source : sturdy::random_source {
        int drawn = 0;
        double next_unit() override { return ++drawn / 10.0; }
    } source;
    sturdy::detail::replayed_random random(source);
    CHECK(random.next_unit() == Approx(0.1));
    CHECK(random.next_unit() == Approx(0.2));
    random.rewind();
    CHECK(random.next_unit() == Approx(0.1));
    CHECK(random.next_unit() == Approx(0.2));
    CHECK(random.next_unit() == Approx(0.3));  // beyond the first run's draws: a new one
    CHECK(source.drawn == 3);
}
