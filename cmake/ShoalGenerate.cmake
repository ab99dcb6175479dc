# ShoalGenerate.cmake — shoal_generate(): compile .proto schemas with the shoal schema
# compiler (protoc-gen-shoal) and add the generated code to a target.
#
#   shoal_generate(TARGET <target> PROTOS <file.proto>...
#                  [IMPORT_DIRS <dir>...] [OUT_DIR <dir>] [LANG c])
#
# For each schema a/b.proto (relative to the import directory holding it) it writes
# <OUT_DIR>/a/b.shoal.h and a/b.shoal.c, adds the .c to <target>, and adds <OUT_DIR>
# to its include directories. Messages that need protobuf encoding also get protoc-c's
# a/b.pb-c.h/.c (the .shoal.c includes the latter), so <target> is linked with
# protobuf-c. Link <target> with shoal::shoal (or shoal::shoal_static) yourself.
#
# IMPORT_DIRS default to the current source directory; the directory holding
# shoal/options.proto is always added. OUT_DIR defaults to
# ${CMAKE_CURRENT_BINARY_DIR}/shoal-gen/<target>. The rule depends on the plugin, so a
# rebuilt plugin regenerates the code.
#
# Works in the shoal source tree (the plugin target protoc-gen-shoal) and installed,
# through find_package(shoal) (the imported target shoal::protoc-gen-shoal).
include_guard(GLOBAL)

set(_SHOAL_GENERATE_DIR ${CMAKE_CURRENT_LIST_DIR})

find_program(SHOAL_PROTOC protoc)
find_program(SHOAL_PROTOC_GEN_C protoc-gen-c)
find_path(SHOAL_PROTOBUF_C_INCLUDE_DIR protobuf-c/protobuf-c.h)
find_library(SHOAL_PROTOBUF_C_LIBRARY protobuf-c)
# shoal/options.proto: in the source tree beside cmake/, or installed next to the
# headers (this file is then in <prefix>/<libdir>/cmake/shoal).
find_path(SHOAL_SCHEMA_DIR shoal/options.proto NO_DEFAULT_PATH
          PATHS ${_SHOAL_GENERATE_DIR}/../schemas ${PACKAGE_PREFIX_DIR}/include
                ${_SHOAL_GENERATE_DIR}/../../../include
                ${_SHOAL_GENERATE_DIR}/../../../../include)

if(SHOAL_PROTOBUF_C_LIBRARY AND SHOAL_PROTOBUF_C_INCLUDE_DIR
   AND NOT TARGET shoal::protobuf-c)
  add_library(shoal::protobuf-c UNKNOWN IMPORTED GLOBAL)
  set_target_properties(shoal::protobuf-c PROPERTIES
    IMPORTED_LOCATION ${SHOAL_PROTOBUF_C_LIBRARY}
    INTERFACE_INCLUDE_DIRECTORIES ${SHOAL_PROTOBUF_C_INCLUDE_DIR})
endif()

function(shoal_generate)
  cmake_parse_arguments(ARG "" "TARGET;OUT_DIR;LANG" "PROTOS;IMPORT_DIRS" ${ARGN})
  if(NOT ARG_TARGET OR NOT ARG_PROTOS)
    message(FATAL_ERROR "shoal_generate: TARGET and PROTOS are required")
  endif()
  if(ARG_UNPARSED_ARGUMENTS)
    message(FATAL_ERROR "shoal_generate: unknown arguments ${ARG_UNPARSED_ARGUMENTS}")
  endif()
  if(NOT ARG_LANG)
    set(ARG_LANG c)
  endif()
  if(NOT ARG_LANG STREQUAL "c")
    message(FATAL_ERROR "shoal_generate: LANG ${ARG_LANG} is not supported (only c)")
  endif()
  if(NOT ARG_OUT_DIR)
    set(ARG_OUT_DIR ${CMAKE_CURRENT_BINARY_DIR}/shoal-gen/${ARG_TARGET})
  endif()
  get_filename_component(out ${ARG_OUT_DIR} ABSOLUTE BASE_DIR ${CMAKE_CURRENT_BINARY_DIR})
  foreach(v SHOAL_PROTOC SHOAL_SCHEMA_DIR)
    if(NOT ${v})
      message(FATAL_ERROR "shoal_generate: ${v} not found (is protobuf-compiler "
                          "installed, and shoal installed with its schemas?)")
    endif()
  endforeach()

  if(TARGET protoc-gen-shoal)
    set(plugin $<TARGET_FILE:protoc-gen-shoal>)
    set(plugin_dep protoc-gen-shoal)
  elseif(TARGET shoal::protoc-gen-shoal)
    set(plugin $<TARGET_FILE:shoal::protoc-gen-shoal>)
    set(plugin_dep shoal::protoc-gen-shoal)
  else()
    find_program(SHOAL_PLUGIN protoc-gen-shoal)
    if(NOT SHOAL_PLUGIN)
      message(FATAL_ERROR "shoal_generate: protoc-gen-shoal not found")
    endif()
    set(plugin ${SHOAL_PLUGIN})
    set(plugin_dep ${SHOAL_PLUGIN})
  endif()

  set(dirs)
  foreach(d ${ARG_IMPORT_DIRS})
    get_filename_component(d ${d} ABSOLUTE BASE_DIR ${CMAKE_CURRENT_SOURCE_DIR})
    list(APPEND dirs ${d})
  endforeach()
  if(NOT dirs)
    set(dirs ${CMAKE_CURRENT_SOURCE_DIR})
  endif()
  set(include_args)
  foreach(d ${dirs} ${SHOAL_SCHEMA_DIR})
    list(APPEND include_args -I${d})
  endforeach()

  set(rels)
  set(abs_protos)
  set(outputs)
  set(sources)
  foreach(p ${ARG_PROTOS})
    get_filename_component(p ${p} ABSOLUTE BASE_DIR ${CMAKE_CURRENT_SOURCE_DIR})
    set(rel)
    foreach(d ${dirs})
      file(RELATIVE_PATH r ${d} ${p})
      if(NOT r MATCHES "^\\.\\./")
        set(rel ${r})
        break()
      endif()
    endforeach()
    if(NOT rel)
      message(FATAL_ERROR "shoal_generate: ${p} is not under any of IMPORT_DIRS ${dirs}")
    endif()
    string(REGEX REPLACE "\\.proto$" "" base ${rel})
    list(APPEND rels ${rel})
    list(APPEND abs_protos ${p})
    list(APPEND outputs ${out}/${base}.shoal.h ${out}/${base}.shoal.c)
    list(APPEND sources ${out}/${base}.shoal.c)
  endforeach()

  set(param "lang=${ARG_LANG}")
  if(SHOAL_PROTOC_GEN_C)
    set(param "${param},protoc-gen-c=${SHOAL_PROTOC_GEN_C}")
  endif()
  add_custom_command(
    OUTPUT ${outputs}
    COMMAND ${CMAKE_COMMAND} -E make_directory ${out}
    COMMAND ${SHOAL_PROTOC} --plugin=protoc-gen-shoal=${plugin}
            "--shoal_out=${param}:${out}" ${include_args} ${rels}
    DEPENDS ${abs_protos} ${plugin_dep} ${SHOAL_SCHEMA_DIR}/shoal/options.proto
    COMMENT "Generating shoal code for ${ARG_TARGET} from ${rels}"
    VERBATIM)

  # A custom target carries the rule, so that <target> may live in another directory
  # than this call (a custom command's outputs are only known in its own directory).
  get_property(count GLOBAL PROPERTY _SHOAL_GENERATE_COUNT)
  if(NOT count)
    set(count 0)
  endif()
  math(EXPR count "${count} + 1")
  set_property(GLOBAL PROPERTY _SHOAL_GENERATE_COUNT ${count})
  add_custom_target(${ARG_TARGET}_shoal_gen_${count} DEPENDS ${outputs})
  add_dependencies(${ARG_TARGET} ${ARG_TARGET}_shoal_gen_${count})
  if(NOT CMAKE_VERSION VERSION_LESS 3.18)
    set_source_files_properties(${outputs} TARGET_DIRECTORY ${ARG_TARGET}
                                PROPERTIES GENERATED TRUE)
  endif()
  target_sources(${ARG_TARGET} PRIVATE ${sources})
  target_include_directories(${ARG_TARGET} PUBLIC ${out})
  # Appended as properties: target_link_libraries() here would clash with a caller
  # using the keyword-less signature on the same target.
  if(TARGET shoal::protobuf-c)
    set_property(TARGET ${ARG_TARGET} APPEND PROPERTY LINK_LIBRARIES shoal::protobuf-c)
    get_target_property(type ${ARG_TARGET} TYPE)
    if(NOT type STREQUAL "EXECUTABLE")
      set_property(TARGET ${ARG_TARGET} APPEND PROPERTY
                   INTERFACE_LINK_LIBRARIES shoal::protobuf-c)
    endif()
  endif()
endfunction()
