"""Built-in defaults used when neither the hub nor the configuration says otherwise."""

#: The offline buildroot image images/dev/build-dev-image.sh makes.
DEV_IMAGE = "localhost/koji-adjutant-buildroot:dev"
