#include <sturdy/executor.hpp>
#include <sturdy/properties.hpp>

#include "support/catch.hpp"

#include <string>
#include <vector>

namespace {

const sturdy::property_key<std::string> tenant{"tenant"};
const sturdy::property_key<int> priority{"priority"};
const sturdy::property_key<long> priority_as_long{"priority"};  // the same name, another type

// A user's policy that reads a hint: refuses calls of tenants it does not serve.
struct tenant_gate {
    std::string served;
    template <class T, class Next, class Done>
    void start(sturdy::call_context& ctx, Next next, Done done) const {
        const std::string* who = ctx.properties.find(tenant);
        if (!who || *who != served)
            return done(sturdy::result<T>(sturdy::error(sturdy::error_kind::permission_denied, "not served here")));
        next(ctx, std::move(done));
    }
};

}  // namespace

TEST_CASE("properties: set, find, value_or and erase by typed key", "[properties]") {
    sturdy::property_bag bag;
    CHECK(bag.empty());
    CHECK(bag.find(tenant) == nullptr);
    CHECK(bag.value_or(priority, 3) == 3);

    bag.set(tenant, std::string("acme")).set(priority, 7);
    REQUIRE(bag.find(tenant) != nullptr);
    CHECK(*bag.find(tenant) == "acme");
    CHECK(bag.value_or(priority, 3) == 7);
    CHECK(bag.size() == 2);

    bag.set(priority, 9);  // replaces, never adds a second entry
    CHECK(bag.value_or(priority, 3) == 9);
    CHECK(bag.size() == 2);

    CHECK(bag.find(priority_as_long) == nullptr);  // a value is read only as the type it was set as

    bag.erase(tenant);
    CHECK(bag.find(tenant) == nullptr);
    CHECK(bag.size() == 1);
}

TEST_CASE("properties: copies are deep", "[properties]") {
    sturdy::property_bag a;
    a.set(tenant, std::string("acme"));
    sturdy::property_bag b = a;
    b.set(tenant, std::string("globex"));
    CHECK(*a.find(tenant) == "acme");
    CHECK(*b.find(tenant) == "globex");
}

TEST_CASE("properties: a policy of one's own reads the call's hints from its context", "[properties]") {
    auto attempt = [](sturdy::call_context&) -> sturdy::result<int> { return 1; };
    sturdy::call_state s1;
    sturdy::call_context served(sturdy::operation::chat, "m", s1);
    served.properties.set(tenant, std::string("acme"));
    CHECK(sturdy::execute(tenant_gate{"acme"}, served, attempt).has_value());

    sturdy::call_state s2;
    sturdy::call_context other(sturdy::operation::chat, "m", s2);
    other.properties.set(tenant, std::string("globex"));
    auto refused = sturdy::execute(tenant_gate{"acme"}, other, attempt);
    REQUIRE_FALSE(refused.has_value());
    CHECK(refused.error().kind() == sturdy::error_kind::permission_denied);
}
