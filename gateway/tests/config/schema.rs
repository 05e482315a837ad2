//! The JSON Schema carries each registered backend type's options.

use serde_json::json;

#[test]
fn each_backend_type_is_a_one_of_branch_with_its_options() {
    let registry = auth_core::Registry::from_inventory().expect("registry");
    let schema = gateway::__test::config_schema(&registry);
    let branches = schema["$defs"]["ChainEntrySchema"]["oneOf"]
        .as_array()
        .expect("oneOf");
    let table = branches
        .iter()
        .find(|b| b["properties"]["type"]["const"] == "table")
        .expect("a branch for `table`");
    let options = &table["properties"]["options"];
    assert_eq!(options["required"], json!(["path"]));
    assert_eq!(options["additionalProperties"], json!(false));
    assert_eq!(options["properties"]["retries"]["type"], "integer");
    assert_eq!(options["properties"]["retries"]["default"], "3");
    assert_eq!(options["properties"]["delay"]["type"], "string");
    assert_eq!(options["properties"]["allow_plaintext"]["type"], "boolean");
    assert_eq!(options["properties"]["users"]["type"], "object");
    assert_eq!(
        options["properties"]["path"]["description"],
        "Where the table came from (required, shown in errors).",
        "the description is the field's doc comment"
    );
}

#[test]
fn route_access_and_listen_have_their_real_shapes() {
    let registry = auth_core::Registry::from_inventory().expect("registry");
    let schema = gateway::__test::config_schema(&registry);
    let listen = &schema["$defs"]["ServerConfig"]["properties"]["listen"];
    assert_eq!(listen["oneOf"][0]["type"], "string", "{listen}");
    assert_eq!(listen["oneOf"][1]["type"], "array", "{listen}");
    let access = &schema["$defs"]["RouteConfig"]["properties"]["access"];
    assert_eq!(
        access["oneOf"][0]["enum"],
        json!(["public", "authenticated", "deny"])
    );
}
