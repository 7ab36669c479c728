// container.hpp: what reaches a task in a container (variables, binds, the OCI config).
#include "container.hpp"

#include <gtest/gtest.h>

#include "error.hpp"

namespace hawf {
namespace {

const std::string dir = "/spool/1001/ckpt/42/eval/files";
const std::string file = "/spool/1001/ckpt/41/eval/delivered/42";

std::optional<std::string> none(const std::string&) { return std::nullopt; }

TEST(ContainerTest, BindsThePathsTheVariablesName) {
    const Environment env = {{"HAWF_CHECKPOINT", "42:eval"}, {"HAWF_CHECKPOINT_DIR", dir},
                             {"HAWF_AFTER_DIR", "/spool/1001/ckpt/41/eval/files"}, {"HAWF_DECISION_FILE", file},
                             {"HAWF_AFTER_DIR", "/spool/1001/ckpt/41/eval/files"},  // once
                             {"HAWF_CONF", "/etc/hawf/hawf.yaml"},                  // not a bind
                             {"HAWF_DECISION_FILE", "relative"}};                    // never
    const std::vector<Bind> binds = container_binds(env);
    ASSERT_EQ(binds.size(), 3u);
    EXPECT_EQ(binds[0].path, dir);
    EXPECT_TRUE(binds[0].writable);
    EXPECT_EQ(binds[1].path, "/spool/1001/ckpt/41/eval/files");
    EXPECT_FALSE(binds[1].writable);
    EXPECT_EQ(binds[2].path, file);
    EXPECT_FALSE(binds[2].writable);
}

TEST(ContainerTest, ApptainerGetsCopiesAndBindPaths) {
    const Environment env = {{"HAWF_CHECKPOINT", "42:eval"}, {"HAWF_CHECKPOINT_DIR", dir}, {"OTHER", "x"}};
    const auto current = [](const std::string& name) -> std::optional<std::string> {
        if (name == "APPTAINER_BINDPATH") return "/data,/scratch:/s:ro," + dir + ":" + dir + ":rw";
        return std::nullopt;
    };
    const Environment out = apptainer_environment(env, container_binds(env), current);
    const Environment expected = {{"APPTAINERENV_HAWF_CHECKPOINT", "42:eval"},
                                  {"SINGULARITYENV_HAWF_CHECKPOINT", "42:eval"},
                                  {"APPTAINERENV_HAWF_CHECKPOINT_DIR", dir},
                                  {"SINGULARITYENV_HAWF_CHECKPOINT_DIR", dir},
                                  // The job's own first; what is there already not twice.
                                  {"APPTAINER_BINDPATH", "/data,/scratch:/s:ro," + dir + ":" + dir + ":rw"},
                                  {"SINGULARITY_BINDPATH", dir + ":" + dir + ":rw"}};
    EXPECT_EQ(out, expected);
    // A path that cannot be said in the list is left out, not mangled.
    const Environment odd = {{"HAWF_CHECKPOINT_DIR", "/a:b,c"}};
    const Environment none_bound = apptainer_environment(odd, container_binds(odd), none);
    EXPECT_EQ(none_bound.size(), 2u);  // the two copies only
}

TEST(ContainerTest, AmendsAnOciConfig) {
    nlohmann::json config = {
        {"ociVersion", "1.0.2"},
        {"process", {{"args", {"sh"}}, {"env", {"PATH=/bin", "HAWF_CHECKPOINT=old"}}}},
        {"mounts", {{{"destination", "/proc"}, {"type", "proc"}, {"source", "proc"}},
                    {{"destination", file}, {"type", "none"}, {"source", "/elsewhere"}}}}};
    const nlohmann::json out = amend_oci_config(config, {{"HAWF_CHECKPOINT", "42:eval"}, {"HAWF_X", "a=b"}},
                                                {{dir, true}, {file, false}});
    EXPECT_EQ(out["process"]["env"], nlohmann::json({"PATH=/bin", "HAWF_CHECKPOINT=42:eval", "HAWF_X=a=b"}));
    ASSERT_EQ(out["mounts"].size(), 3u);  // FILE is mounted already: kept as the bundle says
    EXPECT_EQ(out["mounts"][2], nlohmann::json({{"destination", dir},
                                                {"type", "none"},
                                                {"source", dir},
                                                {"options", {"rbind", "nosuid", "nodev", "rw"}}}));
    EXPECT_EQ(out["ociVersion"], "1.0.2");  // the rest untouched
    // A config without process.env or mounts gets them.
    const nlohmann::json bare = amend_oci_config(nlohmann::json::object(), {{"HAWF_A", "1"}}, {{file, false}});
    EXPECT_EQ(bare["process"]["env"], nlohmann::json({"HAWF_A=1"}));
    EXPECT_EQ(bare["mounts"][0]["options"].back(), "ro");
}

TEST(ContainerTest, RefusesAConfigOfTheWrongShape) {
    for (const char* text : {"[]", R"({"process": 1})", R"({"process": {"env": {}}})", R"({"mounts": "x"})"}) {
        try {
            amend_oci_config(nlohmann::json::parse(text), {{"HAWF_A", "1"}}, {{dir, true}});
            ADD_FAILURE() << text;
        } catch (const Error& e) {
            EXPECT_EQ(e.kind(), ErrorKind::Usage) << text;
            EXPECT_NE(std::string(e.what()).find("OCI configuration"), std::string::npos) << e.what();
        }
    }
}

}  // namespace
}  // namespace hawf
