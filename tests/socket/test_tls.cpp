// TLS against a real HTTPS server, and the proxy settings of the libcurl transport.
//
// The TLS cases start nginx (nginx-light) with certificates made during the test by `openssl`: a
// CA, a certificate for localhost and 127.0.0.1, and one for another name. nginx inherits its
// listening sockets from the test (the NGINX environment variable nginx uses for binary
// upgrades), so they accept before nginx has even started: no port is guessed and no readiness
// is polled for. nginx runs in the foreground as the test's child and dies with it.
// Without nginx or openssl these tests fail, saying what to install: CI installs both.
//
// The proxy cases use a script_server as the proxy: it records the request as a proxy sees it,
// with the absolute URL as its target ("GET http://host/v1/models HTTP/1.1").
#include <sturdy/sturdy.hpp>

#include "support/catch.hpp"
#include "support/script_server.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <optional>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

using namespace std::chrono_literals;
using sturdy::error_kind;
using sturdy_test::reply;

namespace {

const std::string models_json =
    R"({"object":"list","data":[{"id":"tls-model","object":"model","created":1,"owned_by":"nginx"}]})";

std::string read_file(const std::filesystem::path& p) {
    std::ifstream in(p);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

/// The first executable named `name` in /usr/sbin, /usr/bin or $PATH; empty if none.
std::string find_tool(const std::string& name) {
    std::vector<std::string> dirs = {"/usr/sbin", "/usr/bin", "/sbin", "/bin", "/usr/local/sbin", "/usr/local/bin"};
    if (const char* path = std::getenv("PATH")) {
        std::stringstream ss(path);
        for (std::string d; std::getline(ss, d, ':');)
            if (!d.empty()) dirs.push_back(d);
    }
    for (const auto& d : dirs) {
        const std::string candidate = d + "/" + name;
        if (::access(candidate.c_str(), X_OK) == 0) return candidate;
    }
    return {};
}

/// A directory of its own under the system's temporary directory, removed with everything in it.
class temp_dir {
public:
    temp_dir() {
        std::string tmpl = (std::filesystem::temp_directory_path() / "sturdy-tls-XXXXXX").string();
        if (!::mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
        path_ = tmpl;
        ::chmod(path_.c_str(), 0755);  // nginx's workers may run as another user
    }
    ~temp_dir() {
        std::error_code ec;
        std::filesystem::remove_all(path_, ec);
    }
    temp_dir(const temp_dir&) = delete;
    temp_dir& operator=(const temp_dir&) = delete;
    const std::filesystem::path& path() const { return path_; }
    std::string operator/(const std::string& name) const { return (path_ / name).string(); }

private:
    std::filesystem::path path_;
};

/// Runs a shell command with its output kept in `log`; fails the test, showing the output, if it fails.
void run_or_fail(const std::string& command, const std::string& log) {
    const int rc = std::system((command + " >" + log + " 2>&1").c_str());
    if (rc != 0) FAIL("`" << command << "` failed (" << rc << "):\n" << read_file(log));
}

/// A CA, a server certificate for localhost and 127.0.0.1, and one for other.example, all signed by it.
struct certificates {
    std::string ca, server_cert, server_key, other_cert, other_key;

    explicit certificates(const temp_dir& dir) {
        const std::string openssl = find_tool("openssl");
        if (openssl.empty())
            FAIL("openssl is not installed: the TLS tests make their certificates with it (apt-get install openssl)");
        const std::string log = dir / "openssl.log";
        const std::string ec = " -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
        ca = dir / "ca.pem";
        run_or_fail(openssl + " req -x509" + ec + " -keyout " + (dir / "ca.key") + " -out " + ca +
                        " -days 2 -subj '/CN=sturdy test CA' -addext 'basicConstraints=critical,CA:TRUE'"
                        " -addext 'keyUsage=critical,keyCertSign,cRLSign'",
                    log);
        auto issue = [&](const std::string& name, const std::string& cn, const std::string& san, std::string& cert,
                         std::string& key) {
            key = dir / (name + ".key");
            cert = dir / (name + ".pem");
            const std::string ext = dir / (name + ".ext");
            std::ofstream(ext) << "subjectAltName=" << san << "\nbasicConstraints=CA:FALSE\n"
                               << "keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n";
            run_or_fail(openssl + " req" + ec + " -keyout " + key + " -out " + (dir / (name + ".csr")) +
                            " -subj '/CN=" + cn + "'",
                        log);
            run_or_fail(openssl + " x509 -req -in " + (dir / (name + ".csr")) + " -CA " + ca + " -CAkey " +
                            (dir / "ca.key") + " -CAcreateserial -days 2 -out " + cert + " -extfile " + ext,
                        log);
        };
        issue("server", "localhost", "DNS:localhost,IP:127.0.0.1", server_cert, server_key);
        issue("other", "other.example", "DNS:other.example", other_cert, other_key);
    }
};

/// nginx serving /v1/models over HTTPS on two ports of 127.0.0.1: `port` with the certificate for
/// localhost and 127.0.0.1, `other_port` with the one for other.example.
class https_server {
public:
    https_server() : certs_(dir_) {
        const std::string nginx = find_tool("nginx");
        if (nginx.empty())
            FAIL("nginx is not installed: the TLS tests run it as their HTTPS server (apt-get install nginx-light)");
        int good = sturdy_test::detail::make_loopback_socket(128, port_);
        int other = sturdy_test::detail::make_loopback_socket(128, other_port_);

        const std::string d = dir_.path().string();
        auto site = [&](int p, const std::string& cert, const std::string& key) {
            return "  server {\n    listen 127.0.0.1:" + std::to_string(p) + " ssl;\n    ssl_certificate " + cert +
                   ";\n    ssl_certificate_key " + key + ";\n    default_type application/json;\n" +
                   "    location = /v1/models { return 200 '" + models_json + "'; }\n" +
                   "    location / { return 404 '{\"error\":{\"message\":\"no such path\"}}'; }\n  }\n";
        };
        std::ofstream(dir_ / "nginx.conf")
            << "daemon off;\nmaster_process on;\nworker_processes 1;\npid " << d << "/nginx.pid;\nerror_log " << d
            << "/error.log info;\nevents { worker_connections 64; }\nhttp {\n  access_log off;\n"
            << "  client_body_temp_path " << d << "/client_body;\n  proxy_temp_path " << d << "/proxy;\n"
            << "  fastcgi_temp_path " << d << "/fastcgi;\n  uwsgi_temp_path " << d << "/uwsgi;\n  scgi_temp_path " << d
            << "/scgi;\n"
            << site(port_, certs_.server_cert, certs_.server_key)
            << site(other_port_, certs_.other_cert, certs_.other_key) << "}\n";

        // Everything the child needs is made before fork(): between fork and exec, the child of a
        // threaded process may only make async-signal-safe calls.
        const std::string inherit = "NGINX=" + std::to_string(good) + ";" + std::to_string(other) + ";";
        std::vector<std::string> env_strings{inherit};
        for (char** e = environ; *e; ++e) env_strings.emplace_back(*e);
        std::vector<char*> envp;
        for (auto& s : env_strings) envp.push_back(s.data());
        envp.push_back(nullptr);
        std::vector<std::string> arg_strings{nginx, "-p", d, "-e", dir_ / "error.log", "-c", dir_ / "nginx.conf"};
        std::vector<char*> argv;
        for (auto& s : arg_strings) argv.push_back(s.data());
        argv.push_back(nullptr);
        const int out = ::open((dir_ / "nginx.out").c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

        pid_ = ::fork();
        if (pid_ == 0) {
            ::prctl(PR_SET_PDEATHSIG, SIGKILL);  // never outlive the test
            ::fcntl(good, F_SETFD, 0);           // the listening sockets pass to nginx
            ::fcntl(other, F_SETFD, 0);
            if (out >= 0) {
                ::dup2(out, 1);
                ::dup2(out, 2);
            }
            ::execve(argv[0], argv.data(), envp.data());
            ::_exit(127);
        }
        if (out >= 0) ::close(out);
        // nginx holds the sockets now; ours would keep accepting connections if nginx died.
        ::close(good);
        ::close(other);
        if (pid_ < 0) FAIL("fork() failed");
    }

    ~https_server() {
        if (pid_ > 0) {
            ::kill(pid_, SIGTERM);
            int status = 0;
            ::waitpid(pid_, &status, 0);
        }
    }
    https_server(const https_server&) = delete;
    https_server& operator=(const https_server&) = delete;

    std::string url(const std::string& host, bool other = false) const {
        return "https://" + host + ":" + std::to_string(other ? other_port_ : port_) + "/v1";
    }
    const certificates& certs() const { return certs_; }
    /// nginx's own account of what happened, for failure messages.
    std::string log() const { return read_file(dir_ / "nginx.out") + read_file(dir_ / "error.log"); }

private:
    temp_dir dir_;
    certificates certs_;
    int port_ = 0, other_port_ = 0;
    pid_t pid_ = -1;
};

/// One nginx for all the TLS cases of a run (it costs a few openssl and exec calls to start).
https_server& nginx() {
    static https_server server;
    return server;
}

sturdy::result<sturdy::model_list> list_models(const std::string& base_url, sturdy::curl_options curl = {}) {
    sturdy::client_options o;
    o.base_url = base_url;
    o.api_key = "sk-tls-test";
    o.connect_timeout = 2s;
    o.timeout = 3s;
    return sturdy::client(o, sturdy::retry_policy(0), sturdy::curl_transport(std::move(curl))).try_models();
}

/// Sets proxy variables for one test, with every other proxy variable unset, and restores them all.
class proxy_env {
public:
    explicit proxy_env(std::initializer_list<std::pair<std::string, std::string>> values) {
        for (const char* name : {"http_proxy", "https_proxy", "no_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY",
                                 "NO_PROXY", "ALL_PROXY"}) {
            const char* old = std::getenv(name);
            saved_.emplace_back(name, old ? std::optional<std::string>(old) : std::nullopt);
            ::unsetenv(name);
        }
        for (const auto& [name, value] : values) ::setenv(name.c_str(), value.c_str(), 1);
    }
    ~proxy_env() {
        for (const auto& [name, value] : saved_) {
            if (value)
                ::setenv(name.c_str(), value->c_str(), 1);
            else
                ::unsetenv(name.c_str());
        }
    }
    proxy_env(const proxy_env&) = delete;
    proxy_env& operator=(const proxy_env&) = delete;

private:
    std::vector<std::pair<std::string, std::optional<std::string>>> saved_;
};

// A host name that must never be resolved: only a proxy can take a request to it.
const std::string unreachable_host = "api.sturdy-proxy-test.invalid";

}  // namespace

// ---- TLS ----

TEST_CASE("tls: a server whose CA is not trusted fails verification with a connection error that says so",
          "[socket][tls]") {
    auto& server = nginx();
    auto r = list_models(server.url("127.0.0.1"));
    INFO(server.log());
    REQUIRE_FALSE(r);
    CHECK(r.error().kind() == error_kind::connection);
    CHECK(r.error().status() == 0);
    INFO(r.error().what());
    CHECK(r.error().message().find("certificate") != std::string::npos);
}

TEST_CASE("tls: with the CA as ca_bundle the call passes, by IP and by name", "[socket][tls]") {
    auto& server = nginx();
    sturdy::curl_options trust;
    trust.ca_bundle = server.certs().ca;
    for (const char* host : {"127.0.0.1", "localhost"}) {
        INFO(host << "\n" << server.log());
        auto r = list_models(server.url(host), trust);
        if (!r) FAIL(r.error().what());
        REQUIRE(r->data.size() == 1);
        CHECK(r->data[0].id == "tls-model");
    }
}

TEST_CASE("tls: a certificate for another name fails, even from a trusted CA", "[socket][tls]") {
    auto& server = nginx();
    sturdy::curl_options trust;
    trust.ca_bundle = server.certs().ca;
    auto r = list_models(server.url("127.0.0.1", /*other=*/true), trust);
    INFO(server.log());
    REQUIRE_FALSE(r);
    CHECK(r.error().kind() == error_kind::connection);
    INFO(r.error().what());
    CHECK(r.error().message().find("127.0.0.1") != std::string::npos);  // the name that did not match

    // Turning the host check off (local test servers only) lets the same call through.
    trust.verify_host = false;
    CHECK(list_models(server.url("127.0.0.1", true), trust));
}

TEST_CASE("tls: verify_peer off accepts an untrusted certificate", "[socket][tls]") {
    auto& server = nginx();
    sturdy::curl_options insecure;
    insecure.verify_peer = false;
    auto r = list_models(server.url("127.0.0.1"), insecure);
    if (!r) FAIL(r.error().what());
    CHECK(r->data.at(0).id == "tls-model");
}

// ---- proxies ----

TEST_CASE("proxy: http_proxy from the environment carries plain HTTP calls", "[socket][proxy]") {
    sturdy_test::script_server proxy;
    proxy.enqueue(reply::json(200, models_json));
    proxy_env env({{"http_proxy", proxy.origin()}});
    auto r = list_models("http://" + unreachable_host + "/v1");
    if (!r) FAIL(r.error().what());
    CHECK(r->data.at(0).id == "tls-model");
    REQUIRE(proxy.request_count() == 1);
    auto req = proxy.requests().at(0);
    CHECK(req.method == "GET");
    CHECK(req.target == "http://" + unreachable_host + "/v1/models");  // absolute form: a proxy request
    CHECK(req.header("host") == unreachable_host);
}

TEST_CASE("proxy: curl_options::proxy wins over http_proxy", "[socket][proxy]") {
    sturdy_test::script_server from_env, configured;
    configured.enqueue(reply::json(200, models_json));
    proxy_env env({{"http_proxy", from_env.origin()}});
    sturdy::curl_options curl;
    curl.proxy = configured.origin();
    auto r = list_models("http://" + unreachable_host + "/v1", curl);
    if (!r) FAIL(r.error().what());
    CHECK(from_env.request_count() == 0);
    REQUIRE(configured.request_count() == 1);
    CHECK(configured.requests().at(0).target == "http://" + unreachable_host + "/v1/models");
}

TEST_CASE("proxy: no_proxy sends the hosts it names direct", "[socket][proxy]") {
    sturdy_test::script_server proxy, direct;
    direct.enqueue(reply::json(200, models_json));
    proxy_env env({{"http_proxy", proxy.origin()}, {"no_proxy", "localhost,127.0.0.1"}});
    auto r = list_models(direct.base_url());
    if (!r) FAIL(r.error().what());
    CHECK(proxy.request_count() == 0);
    REQUIRE(direct.request_count() == 1);
    CHECK(direct.requests().at(0).target == "/v1/models");  // origin form: no proxy in between
}

TEST_CASE("proxy: curl_options::no_proxy sends the hosts it names direct", "[socket][proxy]") {
    sturdy_test::script_server proxy, direct;
    direct.enqueue(reply::json(200, models_json));
    proxy_env env({{"http_proxy", proxy.origin()}});
    sturdy::curl_options curl;
    curl.no_proxy = "127.0.0.1";
    auto r = list_models(direct.base_url(), curl);
    if (!r) FAIL(r.error().what());
    CHECK(proxy.request_count() == 0);
    CHECK(direct.request_count() == 1);
}

TEST_CASE("proxy: no_proxy from the environment also bypasses curl_options::proxy", "[socket][proxy]") {
    // libcurl reads no_proxy whenever curl_options::no_proxy is empty, whichever way the proxy
    // was set: the environment's exceptions still apply to a configured proxy.
    sturdy_test::script_server configured, direct;
    direct.enqueue(reply::json(200, models_json));
    proxy_env env({{"no_proxy", "127.0.0.1"}});
    sturdy::curl_options curl;
    curl.proxy = configured.origin();
    auto r = list_models(direct.base_url(), curl);
    if (!r) FAIL(r.error().what());
    CHECK(configured.request_count() == 0);
    CHECK(direct.request_count() == 1);
}

TEST_CASE("proxy: https_proxy tunnels HTTPS calls with CONNECT; http_proxy does not apply to them",
          "[socket][proxy][tls]") {
    sturdy_test::script_server proxy;
    proxy.enqueue(reply::json(403, R"({"error":{"message":"tunnel refused"}})"));
    {
        proxy_env env({{"https_proxy", proxy.origin()}});
        auto r = list_models("https://" + unreachable_host + "/v1");
        REQUIRE_FALSE(r);
        CHECK(r.error().kind() == error_kind::connection);  // the tunnel was refused: no HTTP reply of the API
        REQUIRE(proxy.request_count() == 1);
        auto req = proxy.requests().at(0);
        CHECK(req.method == "CONNECT");
        CHECK(req.target == unreachable_host + ":443");
    }
    // An https URL with only http_proxy set goes direct: to nginx here, verified by its CA.
    auto& server = nginx();
    proxy_env env({{"http_proxy", proxy.origin()}});
    sturdy::curl_options trust;
    trust.ca_bundle = server.certs().ca;
    auto r = list_models(server.url("127.0.0.1"), trust);
    if (!r) FAIL(r.error().what() << "\n" << server.log());
    CHECK(proxy.request_count() == 1);  // still only the CONNECT above
}
