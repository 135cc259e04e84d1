#pragma once
/// @file
/// Typed hints for policies, carried by a call: `request_options::properties` become
/// `call_context::properties`, as Polly's `ResilienceContext.Properties`.
///
///     inline const sturdy::property_key<std::string> tenant{"tenant"};   // yours, once
///
///     sturdy::request_options call;
///     call.properties.set(tenant, std::string("acme"));
///     client.chat(request, call);
///     // in a policy of your own: if (const std::string* who = ctx.properties.find(tenant)) ...
///
/// A hint that only some policies read belongs here, not in a field of every call's context.

#include <any>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace sturdy {

/// Names a property and its type. Two keys with one name are the same property.
template <class T>
class property_key {
public:
    explicit constexpr property_key(std::string_view name) noexcept : name_(name) {}
    constexpr std::string_view name() const noexcept { return name_; }

private:
    std::string_view name_;
};

/// A call's properties: a few values, each under its key. Copies are deep.
class property_bag {
public:
    /// Sets `key` to `value`, replacing what it held.
    template <class T>
    property_bag& set(const property_key<T>& key, T value) {
        for (auto& entry : entries_) {
            if (entry.first == key.name()) {
                entry.second = std::move(value);
                return *this;
            }
        }
        entries_.emplace_back(std::string(key.name()), std::any(std::move(value)));
        return *this;
    }

    /// The value under `key`; null when there is none (or one of another type under its name).
    template <class T>
    const T* find(const property_key<T>& key) const {
        for (const auto& entry : entries_)
            if (entry.first == key.name()) return std::any_cast<T>(&entry.second);
        return nullptr;
    }

    /// The value under `key`, or `fallback`.
    template <class T>
    T value_or(const property_key<T>& key, T fallback) const {
        const T* found = find(key);
        return found ? *found : std::move(fallback);
    }

    template <class T>
    void erase(const property_key<T>& key) {
        for (auto it = entries_.begin(); it != entries_.end(); ++it) {
            if (it->first == key.name()) {
                entries_.erase(it);
                return;
            }
        }
    }

    bool empty() const noexcept { return entries_.empty(); }
    std::size_t size() const noexcept { return entries_.size(); }

private:
    // A call carries a handful at most: a vector searched in order beats a map.
    std::vector<std::pair<std::string, std::any>> entries_;
};

}  // namespace sturdy
