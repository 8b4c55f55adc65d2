# CPack: a Debian package (installs under /usr) and a relocatable .tar.gz of the same tree (unpack anywhere).
# The .deb's Depends are computed by dpkg-shlibdeps from the libraries vit links (runtime packages only; needs
# dpkg-dev). `scripts/package.sh` builds both into build/packages/.
set(CPACK_PACKAGE_NAME vit)
set(CPACK_PACKAGE_VENDOR "vit developers")
set(CPACK_PACKAGE_CONTACT "vit developers <vit@localhost>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "Vision Transformer image classification on the CPU")
set(CPACK_PACKAGE_DESCRIPTION
    "vit classifies images with Vision Transformers (timm, Hugging Face, torchvision ViT weights in safetensors) on\n"
    "the CPU with oneDNN, decoding and preprocessing images exactly like PIL. It ships DeiT-tiny (ImageNet-1k) as its\n"
    "default model and a Fashion-MNIST ViT, a man page and bash/zsh completions.")
string(REPLACE ";" "" CPACK_PACKAGE_DESCRIPTION "${CPACK_PACKAGE_DESCRIPTION}")
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_STRIP_FILES ON)
set(CPACK_GENERATOR "DEB;TGZ")
set(CPACK_PACKAGE_DIRECTORY ${CMAKE_BINARY_DIR}/packages)
set(CPACK_PACKAGE_FILE_NAME "vit-${PROJECT_VERSION}-${CMAKE_SYSTEM_NAME}-${CMAKE_SYSTEM_PROCESSOR}")

set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)          # vit_0.1.0_amd64.deb
set(CPACK_DEBIAN_PACKAGE_SECTION science)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS OFF)
set(CPACK_DEBIAN_PACKAGE_SUGGESTS "bash-completion")
include(CPack)
