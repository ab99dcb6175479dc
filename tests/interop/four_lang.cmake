# The four-language test (test_four_lang.py): C (four_lang.c, built here), Python,
# Rust (shoal-interop, built by cargo in the rust.build_interop fixture) and Node
# processes on one queue and one Value. Included from bindings/CMakeLists.txt, after
# the Rust and Node bindings; registered as interop.four_lang.
if(NOT TARGET protoc-gen-shoal OR NOT COMMAND shoal_generate OR NOT TARGET shoal_node
   OR NOT SHOAL_RUST_INTEROP OR NOT SHOAL_PYTHON)
  return()
endif()

set(_dir ${PROJECT_SOURCE_DIR}/tests/interop)
add_executable(four_lang ${_dir}/four_lang.c)
shoal_generate(TARGET four_lang PROTOS ${PROJECT_SOURCE_DIR}/examples/orders/orders.proto
               IMPORT_DIRS ${PROJECT_SOURCE_DIR}/examples/orders)
shoal_generate(TARGET four_lang PROTOS ${_dir}/tally.proto IMPORT_DIRS ${_dir})
target_link_libraries(four_lang PRIVATE shoal)

set(_env
    "SHOAL_LIBRARY=$<TARGET_FILE:shoal>"
    "PYTHONPATH=${PROJECT_SOURCE_DIR}/bindings/python"
    "PYTHONPYCACHEPREFIX=${CMAKE_CURRENT_BINARY_DIR}/pycache"
    "SHOAL_SOURCE_DIR=${PROJECT_SOURCE_DIR}"
    "SHOAL_CLI=$<TARGET_FILE:shoal-cli>"
    "SHOAL_PLUGIN=$<TARGET_FILE:protoc-gen-shoal>"
    "SHOAL_FOUR_C=$<TARGET_FILE:four_lang>"
    "SHOAL_FOUR_RUST=${SHOAL_RUST_INTEROP}"
    "SHOAL_NODE=${SHOAL_NODE}"
    "SHOAL_NODE_ADDON=$<TARGET_FILE:shoal_node>"
    "LD_LIBRARY_PATH=$<TARGET_FILE_DIR:shoal>")
if(SHOAL_PROTOC)
  list(APPEND _env "SHOAL_PROTOC=${SHOAL_PROTOC}")
endif()
if(SHOAL_SANITIZE)
  # Python, Node and the cargo-built program are uninstrumented: preload ASan for all.
  execute_process(COMMAND ${CMAKE_C_COMPILER} -print-file-name=libasan.so
                  OUTPUT_VARIABLE _asan OUTPUT_STRIP_TRAILING_WHITESPACE)
  list(APPEND _env "LD_PRELOAD=${_asan}" "ASAN_OPTIONS=detect_leaks=0:abort_on_error=1")
endif()
add_test(NAME interop.four_lang COMMAND ${SHOAL_PYTHON} -m unittest -v test_four_lang
         WORKING_DIRECTORY ${_dir})
set_tests_properties(interop.four_lang PROPERTIES TIMEOUT 900 LABELS "interop;rust;node;python"
                     ENVIRONMENT "${_env}" FIXTURES_REQUIRED shoal_rust_interop)
